package io.tidemark.workers;

import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A worker that dies between freeze and thaw: run in a child JVM by {@link TinyGuestConsistencyIT}.
 * Arguments: socket directory, state directory, VM, work directory. It starts an
 * application-consistent capture and halts the JVM (no finally blocks, no shutdown hooks: as a
 * SIGKILL would) right after the guest was frozen. Exit code 42 means it got there.
 */
public final class FreezeAndHalt {

    private FreezeAndHalt() {}

    public static void main(String[] args) throws Exception {
        Path work = Files.createDirectories(Path.of(args[3]));
        QmpHypervisor hv = new QmpHypervisor(Path.of(args[0]), Path.of(args[1]));
        hv.onFrozen(vm -> Runtime.getRuntime().halt(42));
        hv.capture(new CaptureRequest(
                args[2], Optional.empty(), "tm-halted", work, ConsistencyPolicy.APPLICATION_REQUIRED));
        System.exit(1); // the hook never ran
    }
}
