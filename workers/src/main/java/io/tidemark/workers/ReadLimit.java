package io.tidemark.workers;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.OptionalLong;

/**
 * The read limits of one job: its own bandwidth ({@code qos.read-bandwidth}) and I/O rate ({@code
 * qos.read-iops}) limits from the policy, then its share of the host's aggregate limit ({@link
 * HostReadLimit}, the engine's {@code worker.hostReadBandwidth} and {@code worker.hostReadIops}).
 * {@link #acquire} is called once per read request sent to the disk's export, so one call is one
 * I/O: a read is admitted when it fits the job's limits (the first read of a job at once, see
 * {@link Pace}), then when it fits the host's, taking its turn among the host's jobs. Time comes
 * from the injected {@link Clock} and waits go through the injected {@link Sleeper}, so tests run
 * on a fake clock. Thread-safe.
 */
public final class ReadLimit {

    /** No limit: {@link #acquire} returns at once. */
    public static final ReadLimit NONE =
            new ReadLimit(null, null, HostReadLimit.Share.NONE, Clock.systemUTC(), d -> {});

    private final Pace bytes;
    private final Pace ios;
    private final HostReadLimit.Share host;
    private final Clock clock;
    private final Sleeper sleeper;

    private ReadLimit(Pace bytes, Pace ios, HostReadLimit.Share host, Clock clock, Sleeper sleeper) {
        this.bytes = bytes;
        this.ios = ios;
        this.host = host;
        this.clock = clock;
        this.sleeper = sleeper;
    }

    /** A bandwidth limit of {@code bytesPerSecond}, or {@link #NONE} when empty. */
    public static ReadLimit of(OptionalLong bytesPerSecond, Clock clock, Sleeper sleeper) {
        return of(bytesPerSecond, OptionalLong.empty(), HostReadLimit.Share.NONE, clock, sleeper);
    }

    /**
     * The job's own limits (each empty = none) within its {@code host} share ({@link
     * HostReadLimit.Share#NONE} = no host limit).
     */
    public static ReadLimit of(
            OptionalLong bytesPerSecond,
            OptionalLong iopsPerSecond,
            HostReadLimit.Share host,
            Clock clock,
            Sleeper sleeper) {
        check(bytesPerSecond, "read bandwidth");
        check(iopsPerSecond, "read I/O");
        if (bytesPerSecond.isEmpty() && iopsPerSecond.isEmpty() && !host.limited()) {
            return NONE;
        }
        return new ReadLimit(
                bytesPerSecond.isPresent() ? new Pace(bytesPerSecond.getAsLong()) : null,
                iopsPerSecond.isPresent() ? new Pace(iopsPerSecond.getAsLong()) : null,
                host,
                clock,
                sleeper);
    }

    private static void check(OptionalLong limit, String what) {
        if (limit.isPresent() && limit.getAsLong() <= 0) {
            throw new IllegalArgumentException("a " + what + " limit must be positive, not " + limit.getAsLong());
        }
    }

    /** Whether reads are limited. */
    public boolean limited() {
        return bytes != null || ios != null || host.limited();
    }

    /** Blocks until one more read request of {@code length} bytes may be sent. */
    public void acquire(long length) {
        if (bytes != null || ios != null) {
            synchronized (this) {
                long now = nanos(clock);
                long due = Long.MIN_VALUE;
                if (bytes != null) {
                    due = Math.max(due, bytes.reserve(length, now));
                }
                if (ios != null) {
                    due = Math.max(due, ios.reserve(1, now));
                }
                sleepUntil(due, now, sleeper, this);
            }
        }
        host.acquire(length);
    }

    static long nanos(Clock clock) {
        Instant i = clock.instant();
        return i.getEpochSecond() * 1_000_000_000L + i.getNano();
    }

    static void sleepUntil(long due, long now, Sleeper sleeper, Object limit) {
        if (due <= now) {
            return;
        }
        try {
            sleeper.sleep(Duration.ofNanos(due - now));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("backup interrupted while pacing reads to " + limit, e);
        }
    }

    @Override
    public String toString() {
        if (!limited()) {
            return "ReadLimit[none]";
        }
        StringBuilder s = new StringBuilder("ReadLimit[");
        if (bytes != null) {
            s.append(bytes.perSecond()).append(" B/s ");
        }
        if (ios != null) {
            s.append(ios.perSecond()).append(" IO/s ");
        }
        return s.append("within ").append(host).append(']').toString();
    }
}
