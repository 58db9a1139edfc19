package io.tidemark.workers;

import io.tidemark.core.Sleeper;
import java.time.Clock;
import java.util.OptionalLong;

/**
 * The aggregate read limit of one host ({@code worker.hostReadBandwidth}, {@code
 * worker.hostReadIops} in the engine config): every snapshot job of the host reads through its own
 * {@link Share}, and together they stay within the limit, on top of each job's own limit.
 *
 * <p>Fair between jobs: a share holds at most one admission at a time (its job's reading threads
 * take turns on the share's lock, never on the host's), and admissions are scheduled in the order
 * they are asked for. So with N jobs reading, each gets every N-th turn whatever its number of
 * reading threads or disks: one VM cannot starve the others. The host's lock is held only to
 * schedule an admission, never while waiting for it or while a VM is read (docs/design.md §8).
 * Time comes from the injected {@link Clock}, waits go through the injected {@link Sleeper}.
 * Thread-safe.
 */
public final class HostReadLimit {

    /** No host limit. */
    public static final HostReadLimit NONE = new HostReadLimit(null, null, Clock.systemUTC(), d -> {});

    private final Pace bytes;
    private final Pace ios;
    private final Clock clock;
    private final Sleeper sleeper;

    private HostReadLimit(Pace bytes, Pace ios, Clock clock, Sleeper sleeper) {
        this.bytes = bytes;
        this.ios = ios;
        this.clock = clock;
        this.sleeper = sleeper;
    }

    /** A limit of {@code bytesPerSecond} and {@code iopsPerSecond} (each empty = none), or {@link #NONE}. */
    public static HostReadLimit of(
            OptionalLong bytesPerSecond, OptionalLong iopsPerSecond, Clock clock, Sleeper sleeper) {
        if (bytesPerSecond.isPresent() && bytesPerSecond.getAsLong() <= 0
                || iopsPerSecond.isPresent() && iopsPerSecond.getAsLong() <= 0) {
            throw new IllegalArgumentException(
                    "a host read limit must be positive, not " + bytesPerSecond + " / " + iopsPerSecond);
        }
        if (bytesPerSecond.isEmpty() && iopsPerSecond.isEmpty()) {
            return NONE;
        }
        return new HostReadLimit(
                bytesPerSecond.isPresent() ? new Pace(bytesPerSecond.getAsLong()) : null,
                iopsPerSecond.isPresent() ? new Pace(iopsPerSecond.getAsLong()) : null,
                clock,
                sleeper);
    }

    /** Whether reads are limited. */
    public boolean limited() {
        return bytes != null || ios != null;
    }

    /** A new share for one job. */
    public Share share() {
        return limited() ? new Share(this) : Share.NONE;
    }

    /** When a read of {@code length} bytes asked for at {@code now} may be sent. */
    private synchronized long reserve(long length, long now) {
        long due = Long.MIN_VALUE;
        if (bytes != null) {
            due = Math.max(due, bytes.reserve(length, now));
        }
        if (ios != null) {
            due = Math.max(due, ios.reserve(1, now));
        }
        return due;
    }

    @Override
    public String toString() {
        if (!limited()) {
            return "HostReadLimit[none]";
        }
        return "HostReadLimit[" + (bytes != null ? bytes.perSecond() + " B/s" : "")
                + (bytes != null && ios != null ? " " : "") + (ios != null ? ios.perSecond() + " IO/s" : "") + "]";
    }

    /** One job's access to the host limit: one admission at a time. */
    public static final class Share {

        /** No host limit. */
        public static final Share NONE = new Share(null);

        private final HostReadLimit host;

        private Share(HostReadLimit host) {
            this.host = host;
        }

        boolean limited() {
            return host != null;
        }

        /** Blocks until the job may send one more read request of {@code length} bytes. */
        public synchronized void acquire(long length) {
            if (host == null) {
                return;
            }
            long now = ReadLimit.nanos(host.clock);
            long due = host.reserve(length, now);
            ReadLimit.sleepUntil(due, now, host.sleeper, host);
        }

        @Override
        public String toString() {
            return host == null ? "no host limit" : host.toString();
        }
    }
}
