package io.tidemark.repository.maintenance;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Announces a writer (a backup, a replication) to garbage collection, for as long as it may reuse
 * objects it has not yet referenced from a manifest. Writers deduplicate against whatever is in
 * the repository — also against objects garbage collection has marked as unreferenced — so a
 * sweep must never run while a writer that may have reused one is still to commit.
 *
 * <p>The protocol needs only put-if-absent, list and delete (Dekker's handshake on objects):
 *
 * <ul>
 *   <li>A writer puts {@code state/writers/<uuid>.json}, then lists {@code state/gc/sweeping/}. If
 *       a live sweep is announced it deletes its lease, waits until the sweep is over, and starts
 *       again. Otherwise it works, and deletes the lease when done.
 *   <li>The collector puts {@code state/gc/sweeping/<run>.json}, then lists {@code state/writers/}
 *       and waits until no live writer lease remains (or gives up on sweeping this run), then
 *       re-marks and sweeps, then deletes its announcement.
 * </ul>
 *
 * Each side writes before it reads, so at least one of them sees the other: a sweep never
 * overlaps a writer. A lease that collection runs have seen for their {@code writerTtl} (48 h by
 * default, by the collector's clock) is stale, so a crashed writer does not block collection
 * forever; writers must finish within it. The {@code expiresAt} a lease records is for operators.
 */
public final class WriteLease implements AutoCloseable {

    static final String PREFIX = ObjectKeys.STATE + "writers/";
    static final String SWEEPS = ObjectKeys.STATE + "gc/sweeping/";

    /** How long a writer lease lasts unless the writer says otherwise. */
    public static final Duration DEFAULT_TTL = Duration.ofHours(48);
    /** How long a writer waits for a running sweep by default. */
    public static final Duration DEFAULT_SWEEP_WAIT = Duration.ofMinutes(30);

    private final ObjectTarget target;
    private final String key;

    private WriteLease(ObjectTarget target, String key) {
        this.target = target;
        this.key = key;
    }

    /** A lease with the default TTL and sweep wait. */
    public static WriteLease acquire(ObjectTarget target, Clock clock, String what) {
        return acquire(target, clock, what, DEFAULT_TTL, DEFAULT_SWEEP_WAIT);
    }

    /**
     * Takes a writer lease on {@code target}, first waiting (up to {@code sweepWait}) for a running
     * sweep to finish.
     *
     * @param what the writer, for messages (e.g. "backup of vm1")
     * @throws RetriableException if a sweep is still running after {@code sweepWait}
     */
    public static WriteLease acquire(ObjectTarget target, Clock clock, String what, Duration ttl, Duration sweepWait) {
        String key = PREFIX + UUID.randomUUID() + ".json";
        long deadline = System.nanoTime() + sweepWait.toNanos();
        while (true) {
            Instant now = clock.instant();
            target.putIfAbsent(key, Leases.encode(what, now, now.plus(ttl)));
            if (!sweeping(target, clock)) {
                return new WriteLease(target, key);
            }
            target.delete(key);
            Duration left = Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
            if (!Leases.await(() -> !sweeping(target, clock), left)) {
                throw new RetriableException("a garbage collection is sweeping " + target.describe()
                        + " and did not finish within " + sweepWait + "; " + what + " will be retried");
            }
        }
    }

    /**
     * Whether a live sweep is announced on {@code target}. An announcement lives for the lifetime it
     * states ({@code expiresAt - startedAt}, both by the collector's clock) counted from when this
     * process first saw it, by this process's clock: the collector's and the writer's clocks are
     * never compared, so a writer whose clock runs hours ahead of the collector's still keeps out of
     * its sweep. (A collector that died mid-sweep leaves its announcement behind; the next
     * collection removes it when it takes the lock, or writers ignore it after that lifetime.)
     */
    static boolean sweeping(ObjectTarget target, Clock clock) {
        Instant now = clock.instant();
        Map<String, Instant> sighted = SIGHTINGS.computeIfAbsent(target.describe(), t -> new ConcurrentHashMap<>());
        List<String> announced = target.list(SWEEPS);
        sighted.keySet().retainAll(announced);
        boolean live = false;
        for (String k : announced) {
            Optional<Leases.Lease> announcement = Leases.read(target, k);
            if (announcement.isEmpty()) {
                continue; // the sweep ended meanwhile
            }
            Instant first = sighted.computeIfAbsent(k, x -> now);
            Leases.Lease l = announcement.get(); // unreadable: it lives for ever, wait for an operator
            Duration lifetime = Duration.between(l.startedAt(), l.expiresAt());
            live |= Duration.between(first, now).compareTo(lifetime) < 0;
        }
        return live;
    }

    /** When this process first saw each sweep announcement, per target: its writers' only clock. */
    private static final Map<String, Map<String, Instant>> SIGHTINGS = new ConcurrentHashMap<>();

    /** Ends the lease. */
    @Override
    public void close() {
        target.delete(key);
    }
}
