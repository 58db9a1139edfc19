package io.tidemark.repository.maintenance;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import java.time.Clock;
import java.time.Duration;

/**
 * The lock that keeps two garbage collections of one repository apart ({@link EpochLock} under
 * {@code state/gc/lock/}). Object stores offer no
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

    private final EpochLock lock;

    private GcLock(EpochLock lock) {
        this.lock = lock;
    }

    /**
     * Takes the lock for {@code ttl}.
     *
     * @throws RetriableException if another collection holds it (naming it and until when)
     */
    public static GcLock acquire(ObjectTarget target, Clock clock, Duration ttl, String owner) {
        return new GcLock(EpochLock.acquire(target, PREFIX, "garbage collection", clock, ttl, owner));
    }

    /** Whether no later collection has taken the lock over. */
    public boolean stillHeld() {
        return lock.stillHeld();
    }

    /** This lock's epoch as a fixed-width, sortable key segment. */
    String epochKey() {
        return lock.epochKey();
    }

    static String keyOf(long epoch) {
        return EpochLock.keyOf(PREFIX, epoch);
    }

    /**
     * Releases the lock. The lease object stays, followed by a {@code <epoch>.released} marker, so
     * the epochs keep growing (the candidate records are numbered by them); the next holder
     * deletes both.
     */
    @Override
    public void close() {
        lock.close();
    }
}
