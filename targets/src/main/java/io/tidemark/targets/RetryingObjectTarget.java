package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.target.ObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An {@link ObjectTarget} that retries its delegate's {@link RetriableException}s with exponential
 * backoff and full jitter until a per-call deadline: the n-th wait is uniform in {@code [0,
 * min(cap, base * 2^(n-1))]}. A call that still fails when the deadline has passed throws a {@link
 * RetriableException} saying how many attempts were made over how long, with the last failure as
 * its cause and its message. {@link PermanentException}s and any other exception pass through on
 * the first attempt.
 *
 * <p><b>Ambiguous writes.</b> A write whose outcome was lost (a reset after the server stored the
 * object, a timeout while the response was on its way) is retried like any other transient fault,
 * so a retried {@link #putIfAbsent} may answer {@code false} — "already present" — for an object
 * that the earlier attempt of this very call wrote. For Tidemark's keys that is the right answer:
 * chunks, index pages and roots are content-addressed and a manifest's key names its restore
 * point, so whatever is stored under the key holds the bytes the caller meant to write. The only
 * thing lost is whether <i>this</i> call created the object, so counts of "objects sent" may be a
 * little low after faults, and {@code putIfAbsent} behind this wrapper must not be used as a lock.
 *
 * <p><b>First contact.</b> A target made by {@link #failingFastUntilReached} does not retry until
 * one of its calls has succeeded: a target that has never answered is more likely misconfigured
 * than briefly down, so a start-up check or a command-line tool reports it at once instead of
 * after the deadline.
 *
 * <p>Each call waits in its own thread; calls share only the random source and the first-contact
 * flag. Thread-safe if the delegate is.
 */
public final class RetryingObjectTarget implements ObjectTarget {

    private static final Logger log = LoggerFactory.getLogger(RetryingObjectTarget.class);

    /**
     * When to retry.
     *
     * @param base the upper bound of the first wait
     * @param cap the largest upper bound any wait may have
     * @param deadline how long one call may keep retrying, measured from its first attempt; zero
     *     means a single attempt
     */
    public record Backoff(Duration base, Duration cap, Duration deadline) {

        /** Validates: {@code 0 < base <= cap}, {@code deadline >= 0}. */
        public Backoff {
            Objects.requireNonNull(base, "base");
            Objects.requireNonNull(cap, "cap");
            Objects.requireNonNull(deadline, "deadline");
            if (base.isNegative() || base.isZero()) {
                throw new IllegalArgumentException("retry backoff base must be positive, was " + base);
            }
            if (cap.compareTo(base) < 0) {
                throw new IllegalArgumentException("retry backoff cap " + cap + " is below its base " + base);
            }
            if (deadline.isNegative()) {
                throw new IllegalArgumentException("retry deadline must not be negative, was " + deadline);
            }
        }

        /** A copy with another deadline. */
        public Backoff withDeadline(Duration deadline) {
            return new Backoff(base, cap, deadline);
        }

        /** 100 ms base, 30 s cap, up to {@code deadline}. */
        public static Backoff upTo(Duration deadline) {
            return new Backoff(Duration.ofMillis(100), Duration.ofSeconds(30), deadline);
        }

        /** The upper bound of the {@code retry}-th wait (1-based): {@code min(cap, base * 2^(retry-1))}. */
        public Duration ceiling(int retry) {
            if (retry < 1) {
                throw new IllegalArgumentException("retries count from 1, was " + retry);
            }
            long baseNanos = base.toNanos();
            long capNanos = cap.toNanos();
            int doublings = retry - 1;
            if (doublings >= 63 || baseNanos > (capNanos >> doublings)) {
                return cap;
            }
            return Duration.ofNanos(Math.min(capNanos, baseNanos << doublings));
        }
    }

    private final ObjectTarget delegate;
    private final Backoff backoff;
    private final Clock clock;
    private final Sleeper sleeper;
    private final RandomGenerator random;
    private volatile boolean reached;

    /** Retries on the system clock with real sleeps. */
    public RetryingObjectTarget(ObjectTarget delegate, Backoff backoff) {
        this(delegate, backoff, Clock.systemUTC(), Sleeper.SYSTEM, RetryingObjectTarget::nextRandomLong);
    }

    /**
     * @param clock measures the deadline
     * @param sleeper waits between attempts
     * @param random draws the jitter ({@link RandomGenerator#nextDouble()}); must be thread-safe if
     *     this target is used from several threads
     */
    public RetryingObjectTarget(
            ObjectTarget delegate, Backoff backoff, Clock clock, Sleeper sleeper, RandomGenerator random) {
        this(delegate, backoff, clock, sleeper, random, true);
    }

    private RetryingObjectTarget(
            ObjectTarget delegate,
            Backoff backoff,
            Clock clock,
            Sleeper sleeper,
            RandomGenerator random,
            boolean reached) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
        this.backoff = Objects.requireNonNull(backoff, "backoff");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
        this.random = Objects.requireNonNull(random, "random");
        this.reached = reached;
    }

    /**
     * A target that retries like {@link #RetryingObjectTarget(ObjectTarget, Backoff)} once one of
     * its calls has succeeded, and not at all before (see "first contact" above).
     */
    public static RetryingObjectTarget failingFastUntilReached(ObjectTarget delegate, Backoff backoff) {
        return failingFastUntilReached(
                delegate, backoff, Clock.systemUTC(), Sleeper.SYSTEM, RetryingObjectTarget::nextRandomLong);
    }

    /** {@link #failingFastUntilReached(ObjectTarget, Backoff)} with injected time and randomness. */
    public static RetryingObjectTarget failingFastUntilReached(
            ObjectTarget delegate, Backoff backoff, Clock clock, Sleeper sleeper, RandomGenerator random) {
        return new RetryingObjectTarget(delegate, backoff, clock, sleeper, random, false);
    }

    /** The target this one retries. */
    public ObjectTarget delegate() {
        return delegate;
    }

    /** This wrapper if it is a {@code kind}, else what the wrapped target answers (docs/adr/0020). */
    @Override
    public <T> java.util.Optional<T> as(Class<T> kind) {
        return kind.isInstance(this) ? java.util.Optional.of(kind.cast(this)) : delegate.as(kind);
    }

    /** The retry settings. */
    public Backoff backoff() {
        return backoff;
    }

    /** The delegate's description: retrying is not a location. */
    @Override
    public String describe() {
        return delegate.describe();
    }

    /**
     * Retried; may answer {@code false} for an object an earlier attempt of this call stored (see the
     * class Javadoc).
     */
    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        return call("write", key, () -> delegate.putIfAbsent(key, data));
    }

    /** Retried as {@link #putIfAbsent}: a deferred write is idempotent too. */
    @Override
    public boolean putIfAbsentDeferred(String key, byte[] data) {
        return call("write", key, () -> delegate.putIfAbsentDeferred(key, data));
    }

    /**
     * Retried: a flush that failed on a transient fault keeps what it has not done for the next
     * attempt, and one whose objects' bytes may be lost fails permanently (FileObjectTarget#flush).
     */
    @Override
    public void flush() {
        call("flush", "(deferred objects)", () -> {
            delegate.flush();
            return null;
        });
    }

    @Override
    public Optional<byte[]> get(String key) {
        return call("read", key, () -> delegate.get(key));
    }

    @Override
    public int read(String key, byte[] into) {
        return call("read", key, () -> delegate.read(key, into));
    }

    @Override
    public boolean exists(String key) {
        return call("look up", key, () -> delegate.exists(key));
    }

    @Override
    public List<String> list(String prefix) {
        return call("list", prefix + "*", () -> delegate.list(prefix));
    }

    @Override
    public void delete(String key) {
        call("delete", key, () -> {
            delegate.delete(key);
            return null;
        });
    }

    @Override
    public java.util.Optional<java.time.Instant> retainUntil(String key) {
        return call("retainUntil", key, () -> delegate.retainUntil(key));
    }

    /** Closes the delegate. */
    @Override
    public void close() {
        delegate.close();
    }

    @Override
    public String toString() {
        return "retrying " + delegate;
    }

    private <T> T call(String action, String key, Supplier<T> operation) {
        Instant start = clock.instant();
        Instant deadline = start.plus(backoff.deadline());
        for (int attempt = 1; ; attempt++) {
            try {
                T result = operation.get();
                reached = true;
                return result;
            } catch (RetriableException e) {
                if (!reached) {
                    throw new RetriableException(
                            "not retried: " + delegate.describe() + " has not answered yet, which more likely means"
                                    + " a wrong endpoint or a network problem than a passing fault: "
                                    + e.getMessage(),
                            e);
                }
                Instant now = clock.instant();
                if (!now.isBefore(deadline)) {
                    throw new RetriableException(
                            "gave up after " + attempts(attempt) + " over "
                                    + seconds(Duration.between(start, now)) + " (retry deadline "
                                    + seconds(backoff.deadline()) + "): " + e.getMessage(),
                            e);
                }
                Duration wait = min(jitter(attempt), Duration.between(now, deadline));
                log.debug(
                        "{} of {} on {} failed (attempt {}), retrying in {} ms: {}",
                        action,
                        key,
                        delegate.describe(),
                        attempt,
                        wait.toMillis(),
                        e.getMessage());
                pause(wait, action, key, attempt, e);
            }
        }
    }

    /** A uniform draw from {@code [0, ceiling(retry)]}. */
    private Duration jitter(int retry) {
        long ceiling = backoff.ceiling(retry).toNanos();
        double u = random.nextDouble();
        return Duration.ofNanos(Math.min(ceiling, (long) (u * ((double) ceiling + 1))));
    }

    private void pause(Duration wait, String action, String key, int attempts, RetriableException last) {
        try {
            sleeper.sleep(wait);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            RetriableException interrupted = new RetriableException(
                    action + " of " + key + " on " + delegate.describe() + " interrupted while waiting to retry after "
                            + attempts(attempts) + "; last failure: " + last.getMessage(),
                    last);
            interrupted.addSuppressed(e);
            throw interrupted;
        }
    }

    private static long nextRandomLong() {
        return ThreadLocalRandom.current().nextLong();
    }

    private static String attempts(int n) {
        return n == 1 ? "1 attempt" : n + " attempts";
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }

    private static String seconds(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1f s", d.toNanos() / 1e9);
    }
}
