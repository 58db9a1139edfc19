package io.tidemark.workers;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import java.time.Clock;
import java.time.Duration;
import java.util.OptionalLong;

/**
 * The read bandwidth limit of one job ({@code qos.read-bandwidth}): paces reads so that, from the
 * first read on, at most {@code bytesPerSecond} are requested per second on average. A read is
 * admitted at once when the bytes requested before it fit the budget of the time elapsed, else the
 * caller sleeps until they do; so the first read of a job is never delayed and the rate over a job
 * converges on the limit from below. Time comes from the injected {@link Clock} and waits go
 * through the injected {@link Sleeper}, so tests run on a fake clock. Thread-safe.
 */
public final class ReadLimit {

    /** No limit: {@link #acquire} returns at once. */
    public static final ReadLimit NONE = new ReadLimit(0, Clock.systemUTC(), d -> {});

    private final long bytesPerSecond;
    private final Clock clock;
    private final Sleeper sleeper;
    private long startNanos = -1;
    private long admitted;

    private ReadLimit(long bytesPerSecond, Clock clock, Sleeper sleeper) {
        this.bytesPerSecond = bytesPerSecond;
        this.clock = clock;
        this.sleeper = sleeper;
    }

    /** A limit of {@code bytesPerSecond}, or {@link #NONE} when empty. */
    public static ReadLimit of(OptionalLong bytesPerSecond, Clock clock, Sleeper sleeper) {
        if (bytesPerSecond.isEmpty()) {
            return NONE;
        }
        if (bytesPerSecond.getAsLong() <= 0) {
            throw new IllegalArgumentException("a read bandwidth limit must be positive, not " + bytesPerSecond);
        }
        return new ReadLimit(bytesPerSecond.getAsLong(), clock, sleeper);
    }

    /** Whether reads are limited. */
    public boolean limited() {
        return bytesPerSecond > 0;
    }

    /** Blocks until {@code bytes} more may be read. */
    public synchronized void acquire(long bytes) {
        if (!limited()) {
            return;
        }
        long now = nanos();
        if (startNanos < 0) {
            startNanos = now;
        }
        // the moment the bytes admitted so far are paid for at the limit
        long due = startNanos + (long) (admitted * 1e9 / bytesPerSecond);
        if (due > now) {
            try {
                sleeper.sleep(Duration.ofNanos(due - now));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("backup interrupted while pacing reads to " + bytesPerSecond + " B/s", e);
            }
        }
        admitted += bytes;
    }

    private long nanos() {
        java.time.Instant i = clock.instant();
        return i.getEpochSecond() * 1_000_000_000L + i.getNano();
    }

    @Override
    public String toString() {
        return limited() ? "ReadLimit[" + bytesPerSecond + " B/s]" : "ReadLimit[none]";
    }
}
