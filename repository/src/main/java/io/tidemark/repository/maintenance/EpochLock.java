package io.tidemark.repository.maintenance;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A lock over one repository's key space for one kind of maintenance (garbage collection, the tier
 * sweep). Object stores offer no compare-and-swap, only put-if-absent, so the lock is a sequence of
 * numbered lease objects {@code <prefix><epoch>}: to take the lock, list them; if the highest is
 * live, someone holds it; otherwise put-if-absent epoch+1 — of two contenders exactly one creates
 * it.
 *
 * <p>Released: a {@code <epoch>.released} marker sorts right after its lease.
 *
 * <p>Stale-lease takeover: a lock whose {@code expiresAt} has passed (its holder crashed, or ran
 * longer than the TTL without {@link #renew}) is taken over by the next epoch. A holder that overran
 * learns it has lost the lock from {@link #stillHeld()} (or {@link #renew} failing).
 */
public final class EpochLock implements AutoCloseable {

    private static final String RELEASED = ".released";

    private final ObjectTarget target;
    private final String prefix;
    private final String what;
    private final String owner;
    private String key;
    private long epoch;

    private EpochLock(ObjectTarget target, String prefix, String what, String owner, String key, long epoch) {
        this.target = target;
        this.prefix = prefix;
        this.what = what;
        this.owner = owner;
        this.key = key;
        this.epoch = epoch;
    }

    /**
     * Takes the lock under {@code prefix} for {@code ttl}.
     *
     * @param what what the lock keeps apart, for messages ("garbage collection", "tier sweep")
     * @throws RetriableException if another holder has it (naming it and until when)
     */
    public static EpochLock acquire(
            ObjectTarget target, String prefix, String what, Clock clock, Duration ttl, String owner) {
        List<String> keys = target.list(prefix);
        long epoch = 0;
        Instant now = clock.instant();
        if (!keys.isEmpty()) {
            String highest = keys.get(keys.size() - 1);
            epoch = epochOf(prefix, highest);
            Optional<Leases.Lease> held = highest.endsWith(RELEASED) ? Optional.empty() : Leases.read(target, highest);
            if (held.isPresent() && held.get().liveAt(now)) {
                throw busy(target, what, held.get());
            }
        }
        String key = keyOf(prefix, epoch + 1);
        if (!target.putIfAbsent(key, Leases.encode(owner, now, now.plus(ttl)))) {
            Leases.read(target, key).ifPresent(l -> {
                throw busy(target, what, l);
            });
            throw new RetriableException(
                    "another " + what + " of " + target.describe() + " took the lock at the same moment; try again");
        }
        for (String old : keys) {
            target.delete(old); // stale (or released) predecessors
        }
        return new EpochLock(target, prefix, what, owner, key, epoch + 1);
    }

    private static RetriableException busy(ObjectTarget target, String what, Leases.Lease l) {
        return new Held(
                "another " + what + " of " + target.describe() + " holds the lock (" + l.owner() + ", since "
                        + l.startedAt() + ", until " + l.expiresAt() + "); try again after it finishes. If that"
                        + " process is dead, the lock is taken over once it expires",
                l.owner(),
                l.expiresAt());
    }

    /** The lock is held by another live holder: who, and until when its lease runs (status pages show it). */
    public static final class Held extends RetriableException {
        private final String holder;
        private final Instant until;

        Held(String message, String holder, Instant until) {
            super(message);
            this.holder = holder;
            this.until = until;
        }

        /** The holder named in the lock. */
        public String holder() {
            return holder;
        }

        /** When the holder's lease runs out unless it renews it. */
        public Instant until() {
            return until;
        }
    }

    /** Whether no later holder has taken the lock over. */
    public boolean stillHeld() {
        List<String> keys = target.list(prefix);
        return !keys.isEmpty() && keys.get(keys.size() - 1).equals(key);
    }

    /**
     * Extends the lock to {@code ttl} from now: the holder puts the next epoch itself (so a short
     * TTL bounds how long a dead holder blocks others, while a live one keeps the lock).
     *
     * @throws RetriableException if the lock was taken over meanwhile (stop: someone else holds it)
     */
    public void renew(Clock clock, Duration ttl) {
        if (!stillHeld()) {
            throw new RetriableException("the " + what + " lock of " + target.describe() + " was taken over while "
                    + owner + " held it (it ran past its lease); this run stops, the holder finishes the work");
        }
        Instant now = clock.instant();
        String next = keyOf(prefix, epoch + 1);
        if (!target.putIfAbsent(next, Leases.encode(owner, now, now.plus(ttl)))) {
            throw new RetriableException("the " + what + " lock of " + target.describe() + " was taken over while "
                    + owner + " renewed it; this run stops");
        }
        target.delete(key);
        key = next;
        epoch++;
    }

    /** This lock's epoch as a fixed-width, sortable key segment. */
    String epochKey() {
        return String.format("%019d", epoch);
    }

    static String keyOf(String prefix, long epoch) {
        return prefix + String.format("%019d", epoch);
    }

    private static long epochOf(String prefix, String key) {
        try {
            String name = key.substring(prefix.length());
            int dot = name.indexOf('.');
            return Long.parseLong(dot < 0 ? name : name.substring(0, dot));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /**
     * Releases the lock. The lease object stays, followed by a {@code <epoch>.released} marker, so
     * the epochs keep growing; the next holder deletes both.
     */
    @Override
    public void close() {
        target.putIfAbsent(key + RELEASED, new byte[0]);
    }
}
