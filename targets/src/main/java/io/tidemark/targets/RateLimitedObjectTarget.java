package io.tidemark.targets;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.target.ObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * An {@link ObjectTarget} whose object bodies move at no more than a set number of bytes per
 * second in each direction: uploads ({@link #putIfAbsent}) and downloads ({@link #get}) each have
 * a token bucket shared by every thread using this target. {@link #exists}, {@link #list} and
 * {@link #delete} carry no object bodies and are not limited.
 *
 * <p>A bucket holds at most 100 ms worth of bytes and starts empty, so over any few seconds the
 * bytes moved stay within a few percent of the limit. An object larger than the bucket is allowed
 * to run it into debt: a put waits, before it is sent, until its bytes are paid for, and the next
 * caller waits for that debt too. A get is paid for after its bytes arrived (its size is unknown
 * before), which delays the next get. Waiting is in the calling thread; an interrupted wait throws
 * {@link RetriableException} with the interrupt flag set.
 *
 * <p>Thread-safe if the delegate is.
 */
public final class RateLimitedObjectTarget implements ObjectTarget {

    /** The bucket's capacity, in time at the limit. */
    static final Duration BURST = Duration.ofMillis(100);

    private final ObjectTarget delegate;
    private final long bytesPerSecond;
    private final Clock clock;
    private final Sleeper sleeper;
    private final TokenBucket uploads;
    private final TokenBucket downloads;

    /** Limits both directions to {@code bytesPerSecond} on the system clock. */
    public RateLimitedObjectTarget(ObjectTarget delegate, long bytesPerSecond) {
        this(delegate, bytesPerSecond, Clock.systemUTC(), Sleeper.SYSTEM);
    }

    /**
     * Limits both directions to {@code bytesPerSecond}, each on its own bucket.
     *
     * @throws IllegalArgumentException if the limit is not positive
     */
    public RateLimitedObjectTarget(ObjectTarget delegate, long bytesPerSecond, Clock clock, Sleeper sleeper) {
        if (bytesPerSecond <= 0) {
            throw new IllegalArgumentException("bandwidth limit must be positive, was " + bytesPerSecond + " B/s");
        }
        this.delegate = Objects.requireNonNull(delegate, "delegate");
        this.bytesPerSecond = bytesPerSecond;
        this.clock = Objects.requireNonNull(clock, "clock");
        this.sleeper = Objects.requireNonNull(sleeper, "sleeper");
        this.uploads = new TokenBucket(bytesPerSecond);
        this.downloads = new TokenBucket(bytesPerSecond);
    }

    /** The limit per direction, in bytes per second. */
    public long bytesPerSecond() {
        return bytesPerSecond;
    }

    /** The target this one throttles. */
    public ObjectTarget delegate() {
        return delegate;
    }

    /** This wrapper if it is a {@code kind}, else what the wrapped target answers (docs/adr/0020). */
    @Override
    public <T> java.util.Optional<T> as(Class<T> kind) {
        return kind.isInstance(this) ? java.util.Optional.of(kind.cast(this)) : delegate.as(kind);
    }

    @Override
    public String describe() {
        return delegate.describe();
    }

    /** Waits until {@code data.length} bytes of upload budget are available, then stores. */
    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        pause(uploads.reserve(data.length, clock.instant()), "upload of " + key);
        return delegate.putIfAbsent(key, data);
    }

    /** Waits until the bytes may be sent, then writes them deferred. */
    @Override
    public boolean putIfAbsentDeferred(String key, byte[] data) {
        pause(uploads.reserve(data.length, clock.instant()), "upload of " + key);
        return delegate.putIfAbsentDeferred(key, data);
    }

    @Override
    public void flush() {
        delegate.flush();
    }

    /** Reads, then waits until the bytes read are paid for. */
    @Override
    public Optional<byte[]> get(String key) {
        Optional<byte[]> object = delegate.get(key);
        if (object.isPresent()) {
            pause(downloads.reserve(object.get().length, clock.instant()), "download of " + key);
        }
        return object;
    }

    @Override
    public int read(String key, byte[] into) {
        int n = delegate.read(key, into);
        if (n > 0) {
            pause(downloads.reserve(n, clock.instant()), "download of " + key);
        }
        return n;
    }

    @Override
    public boolean exists(String key) {
        return delegate.exists(key);
    }

    @Override
    public List<String> list(String prefix) {
        return delegate.list(prefix);
    }

    @Override
    public void delete(String key) {
        delegate.delete(key);
    }

    @Override
    public java.util.Optional<java.time.Instant> retainUntil(String key) {
        return delegate.retainUntil(key);
    }

    /** Closes the delegate. */
    @Override
    public void close() {
        delegate.close();
    }

    @Override
    public String toString() {
        return delegate + " at " + bytesPerSecond + " B/s";
    }

    private void pause(Duration wait, String what) {
        try {
            sleeper.sleep(wait);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    what + " on " + delegate.describe() + " interrupted while waiting for bandwidth", e);
        }
    }

    /**
     * Tokens are bytes; they accrue at the limit up to {@link #BURST} worth, and a reservation may
     * take the balance negative (debt) — the reserving caller then waits until the debt is repaid.
     */
    static final class TokenBucket {
        private final double bytesPerNano;
        private final double capacity;
        private double tokens;
        private Instant last;

        TokenBucket(long bytesPerSecond) {
            this.bytesPerNano = bytesPerSecond / 1e9;
            this.capacity = bytesPerSecond * (BURST.toNanos() / 1e9);
        }

        /** Takes {@code bytes} at {@code now}; returns how long the caller must wait before using them. */
        synchronized Duration reserve(long bytes, Instant now) {
            if (last == null) {
                last = now;
            } else if (now.isAfter(last)) {
                tokens = Math.min(capacity, tokens + Duration.between(last, now).toNanos() * bytesPerNano);
                last = now;
            }
            tokens -= bytes;
            return tokens >= 0 ? Duration.ZERO : Duration.ofNanos((long) Math.ceil(-tokens / bytesPerNano));
        }
    }
}
