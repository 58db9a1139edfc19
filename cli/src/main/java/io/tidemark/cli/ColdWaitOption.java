package io.tidemark.cli;

import io.tidemark.core.RetriableException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.recovery.ColdRestore;
import io.tidemark.repository.Repository;
import java.io.PrintStream;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import picocli.CommandLine.Option;

/**
 * The {@code --cold-wait DURATION} option every command that reads a point's chunks shares
 * (restore, restore-instant, files, drill, replicate): before the read, make the archived chunks
 * readable with {@link ColdWait} (docs/runbooks/cold-restore.md). Without the option nothing is
 * looked up and a read of an archived chunk fails with {@code InvalidObjectState}.
 */
final class ColdWaitOption {

    @Option(
            names = "--cold-wait",
            paramLabel = "DURATION",
            description = "first make the point's archived chunks (GLACIER, DEEP_ARCHIVE) readable: request their"
                    + " restore and wait at most DURATION (e.g. 6h; 0s only sends the requests), then go on;"
                    + " exit 3 naming how many are still archived when the time is up (docs/runbooks/cold-restore.md)")
    String coldWait;

    /** How it waits; tests replace it. */
    ColdWait waiter = ColdWait.system();

    /** Whether {@code --cold-wait} was given. */
    boolean given() {
        return coldWait != null;
    }

    /**
     * Makes the chunks of the accepted disks of {@code points} readable, when {@code --cold-wait} was
     * given; else does nothing.
     *
     * @return what was done; empty without the option or on a target without storage classes
     * @throws RetriableException when chunks are still archived at the deadline, or when interrupted
     */
    Optional<ColdRestore.Result> prepare(
            ObjectTarget source,
            Repository repo,
            List<Manifest> points,
            Predicate<DiskEntry> disks,
            PrintStream progress) {
        if (coldWait == null) {
            return Optional.empty();
        }
        try {
            return waiter.prepare(
                    source,
                    repo,
                    points,
                    disks,
                    io.tidemark.engine.Targets.duration("--cold-wait", coldWait),
                    progress);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while waiting for archived chunks of " + source.describe()
                    + " to be restored; the restore requests stand: run the command again");
        }
    }

    /** The disk named {@code name}; every disk when null. */
    static Predicate<DiskEntry> disk(String name) {
        return name == null ? d -> true : d -> d.name().equals(name);
    }
}
