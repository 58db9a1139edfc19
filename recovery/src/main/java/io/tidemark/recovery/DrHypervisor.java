package io.tidemark.recovery;

import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * Where a failover runs the VMs of a plan: QEMU processes under the work dir ({@link DrSite}) or
 * a libvirt daemon ({@link LibvirtDrSite}). Both run a VM from its restored disks and, when its
 * point has one, its captured definition; both say what they changed to fit the DR host and which
 * accelerator the VM runs under.
 */
public interface DrHypervisor extends AutoCloseable {

    /**
     * A VM just started.
     *
     * @param accelerator {@code kvm} or {@code tcg}
     * @param notes what was adapted or assumed, one sentence each (a TCG fallback and why, a CPU
     *     model or machine type the host lacks, a point without a definition, remapped networks)
     */
    record Started(String accelerator, List<String> notes) {
        public Started {
            notes = List.copyOf(notes);
        }
    }

    /** A short description for output: {@code libvirt qemu:///system} or {@code QEMU processes under DIR}. */
    String describe();

    /** The VM's state when it runs or is paused there; empty when it does not run. */
    Optional<String> status(String vm);

    /** What would stop {@code vm} from starting from {@code point} (dry run); touches nothing. */
    List<String> check(RecoveryPlan.Vm vm, Manifest point);

    /** What starting {@code vm} from {@code point} would adapt to this host (dry run); touches nothing. */
    List<String> adaptations(RecoveryPlan.Vm vm, Manifest point);

    /** Starts {@code vm} on the restored {@code disks} (in the point's disk order). */
    Started start(RecoveryPlan.Vm vm, Manifest point, List<Path> disks);

    /** Waits until the VM runs. */
    void awaitRunning(String vm, Duration timeout);

    /** Stops the VM if it runs. */
    void stop(String vm);

    @Override
    default void close() {}

    /** The DR host of {@code plan}, with its files under {@code site}. */
    static DrHypervisor of(RecoveryPlan plan, DrSite site) {
        return plan.drHost().kind() == RecoveryPlan.HypervisorKind.LIBVIRT
                ? new LibvirtDrSite(plan.drHost(), site)
                : site;
    }
}
