package io.tidemark.cli;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.recovery.ColdRestore;
import io.tidemark.replicator.TierSweep;
import io.tidemark.repository.Repository;
import java.io.PrintStream;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Predicate;

/**
 * {@code --cold-wait} ({@link ColdWaitOption}: restore, restore-instant, files, drill, replicate):
 * before a command reads a point's chunks, make the archived ones
 * readable (docs/runbooks/cold-restore.md): HEAD each chunk the point references, request a restore
 * of the archived ones, and wait for them, at most the given time, saying how far it came and how
 * long it waited. A target without storage classes ({@link ColdStorage}) needs nothing.
 */
final class ColdWait {

    /** Days a restored copy lasts: enough for the restore and a retry the next day. */
    static final int DAYS = 3;

    private final Clock clock;
    private final Sleeper sleeper;
    private final Duration pollEvery;

    ColdWait(Clock clock, Sleeper sleeper, Duration pollEvery) {
        this.clock = clock;
        this.sleeper = sleeper;
        this.pollEvery = pollEvery;
    }

    /** Polls every minute on the system clock. */
    static ColdWait system() {
        return new ColdWait(Clock.systemUTC(), Sleeper.SYSTEM, Duration.ofMinutes(1));
    }

    /**
     * Makes the chunks of {@code point} in {@code source} readable, waiting at most {@code wait}.
     *
     * @return what was done, empty when the target has no storage classes
     * @throws RetriableException when objects are still archived at the deadline: it says how many,
     *     that the requests stand, and to run the restore again later or with a longer --cold-wait
     */
    Optional<ColdRestore.Result> prepare(
            ObjectTarget source, Repository repo, Manifest point, Duration wait, PrintStream progress)
            throws InterruptedException {
        return prepare(source, repo, List.of(point), d -> true, wait, progress);
    }

    /**
     * Makes the chunks of the disks {@code disks} accepts of every point of {@code points} readable,
     * waiting at most {@code wait} for all of them together (their restores run side by side).
     */
    Optional<ColdRestore.Result> prepare(
            ObjectTarget source,
            Repository repo,
            List<Manifest> points,
            Predicate<DiskEntry> disks,
            Duration wait,
            PrintStream progress)
            throws InterruptedException {
        Optional<ColdStorage> cold = source.as(ColdStorage.class);
        if (cold.isEmpty() || points.isEmpty()) {
            return Optional.empty();
        }
        Set<String> keys = new LinkedHashSet<>();
        for (Manifest point : points) {
            keys.addAll(TierSweep.chunkKeys(repo, point, disks));
        }
        String what = points.size() == 1
                ? "restore point " + points.get(0).id()
                : points.size() + " restore points (" + points.get(0).id() + " … "
                        + points.get(points.size() - 1).id() + ")";
        ColdRestore.Result r = new ColdRestore(cold.get(), clock, sleeper, pollEvery).run(keys, DAYS, wait, p -> {
            if (p.readable() < p.objects() && progress != null) {
                progress.printf(
                        "cold restore: %d/%d chunks readable, %d restoring, %d restore requests, waited %s%n",
                        p.readable(), p.objects(), p.restoring(), p.requested(), human(p.waited()));
            }
        });
        if (!r.complete()) {
            throw new RetriableException(r.pending().size() + " of " + r.objects() + " chunks of " + what
                    + " are still archived in " + source.describe() + " after waiting "
                    + human(r.waited()) + " (" + r.requested() + " restore requests sent now; first pending: "
                    + r.pending().get(0) + "). The requests stand: run the same command again later (it waits only"
                    + " for what is left), or with a longer --cold-wait (archive restores take hours;"
                    + " docs/runbooks/cold-restore.md)");
        }
        if (r.archived() > 0 && progress != null) {
            progress.printf(
                    "cold restore: %d archived chunks readable after %s (%d restore requests)%n",
                    r.archived(), human(r.waited()), r.requested());
        }
        return Optional.of(r);
    }

    static String human(Duration d) {
        return d.truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                .toString()
                .substring(2)
                .toLowerCase(java.util.Locale.ROOT);
    }
}
