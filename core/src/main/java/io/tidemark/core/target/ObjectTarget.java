package io.tidemark.core.target;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A flat key space of immutable objects: a directory, an S3/OSS bucket prefix, a RADOS pool.
 * Keys are relative, '/'-separated, and never start with '/'. Every method translates its
 * technology's faults into {@link io.tidemark.core.RetriableException} or
 * {@link io.tidemark.core.PermanentException}.
 */
public interface ObjectTarget extends AutoCloseable {

    /** A human-readable location such as {@code s3://bucket/prefix}, for messages; never holds secrets. */
    String describe();

    /**
     * Stores {@code data} under {@code key} unless an object already exists there. Atomic: a reader
     * sees either no object or all of it. Idempotent.
     *
     * @return true if this call wrote the object, false if it was already present
     */
    boolean putIfAbsent(String key, byte[] data);

    /**
     * As {@link #putIfAbsent}, but the object need only be durable, and visible to other clients,
     * once {@link #flush()} has returned; this client sees it at once ({@link #get}, {@link
     * #exists}). Lets a target batch its durability work; a target whose every write is durable
     * (object stores), and every wrapper, may simply {@link #putIfAbsent}.
     */
    default boolean putIfAbsentDeferred(String key, byte[] data) {
        return putIfAbsent(key, data);
    }

    /**
     * Makes every object written by {@link #putIfAbsentDeferred} before this call durable and
     * visible. Callers flush before writing an object that refers to them (a manifest).
     */
    default void flush() {
        // every write is durable already
    }

    /** The whole object, or empty if there is none. */
    Optional<byte[]> get(String key);

    /**
     * Reads object {@code key} into {@code into[0, n)} and returns n, its length, when it fits; when
     * it is longer than {@code into}, returns its length and leaves {@code into} unspecified (read it
     * with {@link #get}); -1 when there is no such object. Lets a reader that fetches many objects
     * of a known maximum size (a restore) reuse a few buffers. The default reads it with {@link #get}
     * and copies it; adapters that can read into the buffer directly override it.
     */
    default int read(String key, byte[] into) {
        Optional<byte[]> object = get(key);
        if (object.isEmpty()) {
            return -1;
        }
        byte[] bytes = object.get();
        if (bytes.length <= into.length) {
            System.arraycopy(bytes, 0, into, 0, bytes.length);
        }
        return bytes.length;
    }

    /** Whether an object exists under {@code key}. */
    boolean exists(String key);

    /** All keys starting with {@code prefix}, in lexicographic order. */
    List<String> list(String prefix);

    /** Removes the object; removing a missing object is not an error. */
    void delete(String key);

    /**
     * Until when the object is protected against deletion by the target itself (S3 Object Lock),
     * if it is. Targets without immutability answer empty; wrappers pass the question through.
     * Prune asks before deleting, so it never tries to remove a locked object.
     */
    default Optional<Instant> retainUntil(String key) {
        return Optional.empty();
    }

    /**
     * This target seen as {@code kind} (an extra port such as {@link ColdStorage}, or an adapter
     * class such as the S3 target, for operations that only it has), if it is one. Wrappers (retry,
     * rate limit) answer for the target they wrap, so a caller holding an opened target reaches its
     * adapter's other ports without knowing how it was wrapped. The object answered is the inner
     * one: its calls are neither retried nor throttled by the wrappers.
     */
    default <T> Optional<T> as(Class<T> kind) {
        return kind.isInstance(this) ? Optional.of(kind.cast(this)) : Optional.empty();
    }

    @Override
    void close();
}
