package io.tidemark.repository.maintenance;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * The lock that keeps two garbage collections of one repository apart. Object stores offer no
 * compare-and-swap, only put-if-absent, so the lock is a sequence of numbered lease objects
 * {@code state/gc/lock/<epoch>}: to take the lock, list them; if the highest is live, someone
 * holds it; otherwise put-if-absent epoch+1 — of two contenders exactly one creates it.
 *
 * <p>Released: a {@code <epoch>.released} marker sorts right after its lease.
 *
 * <p>Stale-lease takeover: a lock whose {@code expiresAt} has passed (its holder crashed, or ran
 * longer than the TTL) is taken over by the next epoch. A holder that overran learns it has lost
 * the lock from {@link #stillHeld()}, which the collector checks right before it deletes anything.
 */
public final class GcLock implements AutoCloseable {

    static final String PREFIX = ObjectKeys.STATE + "gc/lock/";
    private static final String RELEASED = ".released";

    private final ObjectTarget target;
    private final String key;
    private final long epoch;

    private GcLock(ObjectTarget target, String key, long epoch) {
        this.target = target;
        this.key = key;
        this.epoch = epoch;
    }

    /**
     * Takes the lock for {@code ttl}.
     *
     * @throws RetriableException if another collection holds it (naming it and until when)
     */
    public static GcLock acquire(ObjectTarget target, Clock clock, Duration ttl, String owner) {
        List<String> keys = target.list(PREFIX);
        long epoch = 0;
        Instant now = clock.instant();
        if (!keys.isEmpty()) {
            String highest = keys.get(keys.size() - 1);
            epoch = epochOf(highest);
            Optional<Leases.Lease> held = highest.endsWith(RELEASED) ? Optional.empty() : Leases.read(target, highest);
            if (held.isPresent() && held.get().liveAt(now)) {
                throw busy(target, held.get());
            }
        }
        String key = keyOf(epoch + 1);
        if (!target.putIfAbsent(key, Leases.encode(owner, now, now.plus(ttl)))) {
            Leases.read(target, key).ifPresent(l -> {
                throw busy(target, l);
            });
            throw new RetriableException("another garbage collection of " + target.describe()
                    + " took the lock at the same moment; try again");
        }
        for (String old : keys) {
            target.delete(old); // stale (or released) predecessors
        }
        return new GcLock(target, key, epoch + 1);
    }

    private static RetriableException busy(ObjectTarget target, Leases.Lease l) {
        return new RetriableException("another garbage collection of " + target.describe() + " holds the lock ("
                + l.owner() + ", since " + l.startedAt() + ", until " + l.expiresAt() + "); try again after it"
                + " finishes. If that process is dead, the lock is taken over once it expires");
    }

    /** Whether no later collection has taken the lock over. */
    public boolean stillHeld() {
        List<String> keys = target.list(PREFIX);
        return !keys.isEmpty() && keys.get(keys.size() - 1).equals(key);
    }

    /** This lock's epoch as a fixed-width, sortable key segment. */
    String epochKey() {
        return String.format("%019d", epoch);
    }

    static String keyOf(long epoch) {
        return PREFIX + String.format("%019d", epoch);
    }

    private static long epochOf(String key) {
        try {
            String name = key.substring(PREFIX.length());
            int dot = name.indexOf('.');
            return Long.parseLong(dot < 0 ? name : name.substring(0, dot));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /**
     * Releases the lock. The lease object stays, followed by a {@code <epoch>.released} marker, so
     * the epochs keep growing (the candidate records are numbered by them); the next holder
     * deletes both.
     */
    @Override
    public void close() {
        target.putIfAbsent(key + RELEASED, new byte[0]);
    }
}
