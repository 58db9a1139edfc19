package io.tidemark.recovery;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ColdStorage.Placement;
import io.tidemark.core.target.ColdStorage.Readability;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Makes the archived objects a restore needs readable (docs/adr/0020-storage-tiers.md,
 * docs/runbooks/cold-restore.md): asks the store where each object is, requests a restore of each
 * one in an archive class that has no readable copy, then polls the ones still restoring until all
 * are readable or the deadline passes, and says how long it waited.
 *
 * <p>Safe to run again: a restore request is idempotent, objects already readable are only
 * counted, and a restored copy that expired meanwhile is requested again. Every {@code pollEvery}
 * (waiting through the injected {@link Sleeper}, so tests advance a fake clock) it asks about the
 * pending objects in request order and stops at the first one still restoring: restores requested
 * together finish together, so a poll costs about one HEAD until they do.
 */
public final class ColdRestore {

    /** How far a cold restore has come; reported after the requests and after every poll. */
    public record Progress(int objects, int readable, int restoring, int requested, Duration waited) {}

    /**
     * What a cold restore did.
     *
     * @param objects the objects the restore needs
     * @param archived how many of them were in an archive class when it began
     * @param requested how many restore requests it sent
     * @param waited how long it waited for restores to complete
     * @param pending the objects still not readable (empty when complete)
     */
    public record Result(int objects, int archived, int requested, Duration waited, List<String> pending) {
        public Result {
            pending = List.copyOf(pending);
        }

        public boolean complete() {
            return pending.isEmpty();
        }
    }

    private final ColdStorage store;
    private final Clock clock;
    private final Sleeper sleeper;
    private final Duration pollEvery;

    public ColdRestore(ColdStorage store, Clock clock, Sleeper sleeper, Duration pollEvery) {
        this.store = Objects.requireNonNull(store, "store");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
        if (pollEvery.isNegative() || pollEvery.isZero()) {
            throw new IllegalArgumentException("pollEvery must be positive");
        }
        this.pollEvery = pollEvery;
    }

    /**
     * Restores {@code keys} for {@code days} days, waiting at most {@code deadline}.
     *
     * @param progress told after the requests and after every poll
     * @return what was done; {@link Result#complete()} false when the deadline passed first (run
     *     again later: the requests stand)
     * @throws InterruptedException if interrupted while waiting
     */
    public Result run(
            Collection<String> keys, int days, Duration deadline, java.util.function.Consumer<Progress> progress)
            throws InterruptedException {
        Instant start = clock.instant();
        Set<String> pending = new LinkedHashSet<>();
        int archived = 0;
        int requested = 0;
        int restoring = 0;
        for (String key : new LinkedHashSet<>(keys)) {
            Placement p = store.placement(key);
            if (p.readability() != Readability.READABLE) {
                archived++;
            }
            if (p.readability() == Readability.ARCHIVED) {
                store.requestRestore(key, days);
                requested++;
            }
            if (!p.readable()) {
                pending.add(key);
                restoring++;
            }
        }
        int total = new LinkedHashSet<>(keys).size();
        progress.accept(new Progress(total, total - pending.size(), restoring, requested, Duration.ZERO));
        while (!pending.isEmpty()) {
            Duration waited = Duration.between(start, clock.instant());
            Duration left = deadline.minus(waited);
            if (left.isNegative() || left.isZero()) {
                break;
            }
            sleeper.sleep(pollEvery.compareTo(left) < 0 ? pollEvery : left);
            for (var it = pending.iterator(); it.hasNext(); ) {
                String key = it.next();
                Placement p = store.placement(key);
                if (p.readable()) {
                    it.remove();
                } else if (p.readability() == Readability.ARCHIVED) { // the restored copy expired, or lost
                    store.requestRestore(key, days);
                    requested++;
                } else {
                    break; // still restoring: those requested after it most likely too; ask again next poll
                }
            }
            progress.accept(new Progress(
                    total,
                    total - pending.size(),
                    pending.size(),
                    requested,
                    Duration.between(start, clock.instant())));
        }
        return new Result(
                total, archived, requested, Duration.between(start, clock.instant()), new ArrayList<>(pending));
    }

    /**
     * As {@link #run}, but a restore not complete by the deadline is a {@link RetriableException}
     * saying how many objects are pending, how long it waited, and to run again later.
     */
    public Result runOrFail(
            Collection<String> keys, int days, Duration deadline, java.util.function.Consumer<Progress> progress)
            throws InterruptedException {
        Result r = run(keys, days, deadline, progress);
        if (!r.complete()) {
            throw new RetriableException(r.pending().size() + " of " + r.objects() + " archived objects are still"
                    + " being restored after " + r.waited().toSeconds() + " s (first: "
                    + r.pending().get(0) + "); the"
                    + " restore requests stand: run the restore again later, or with a longer --cold-wait (archive"
                    + " restores take minutes to hours; docs/runbooks/cold-restore.md)");
        }
        return r;
    }
}
