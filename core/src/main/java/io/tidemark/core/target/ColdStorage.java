package io.tidemark.core.target;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * Storage tiers of an object store, as a port (docs/adr/0020-storage-tiers.md): which storage class
 * an object is in, whether it must be restored before it can be read, a request to restore it, and
 * the tag that tells the store's lifecycle rules which tier an object may move to. Implemented by
 * {@code S3ObjectTarget}; a store without tiers has no implementation. Every method translates the
 * technology's faults into {@link io.tidemark.core.RetriableException} or {@link
 * io.tidemark.core.PermanentException}.
 */
public interface ColdStorage {

    /** The object tag key that names the storage class an object may move to. */
    String TIER_TAG = "tidemark-tier";

    /**
     * Where {@code key} is now.
     *
     * @throws io.tidemark.core.PermanentException when the object does not exist
     */
    Placement placement(String key);

    /**
     * Asks the store to make a readable copy of archived {@code key} for {@code days} days.
     * Idempotent: a restore already in progress or done is not an error.
     */
    void requestRestore(String key, int days);

    /**
     * Copies {@code key} onto itself in the storage class new objects are written in, so it stays
     * readable after a restored copy expires (a chunk a young point needs again, ADR 20). Keeps the
     * object's other tags and metadata. The object must be readable now ({@link Readability#RESTORED}
     * or already readable).
     */
    void rewarm(String key);

    /** Tags {@code key} with {@link #TIER_TAG} = {@code storageClass}; empty removes the tag. */
    void tagTier(String key, Optional<String> storageClass);

    /** The {@link #TIER_TAG} of {@code key}, if it has one. */
    Optional<String> tierTag(String key);

    /** Whether an object can be read now. */
    enum Readability {
        /** In a readable class: GET works. */
        READABLE,
        /** In an archive class, no restore asked for or the restored copy expired: GET fails. */
        ARCHIVED,
        /** In an archive class, a restore is in progress: GET fails until it completes. */
        RESTORING,
        /** In an archive class with a restored copy: GET works until {@link Placement#restoredUntil}. */
        RESTORED
    }

    /**
     * Where an object is.
     *
     * @param storageClass the store's class name ({@code STANDARD} when the store names none)
     * @param readability whether it can be read now
     * @param restoredUntil when a restored copy expires, for {@link Readability#RESTORED}
     */
    record Placement(String storageClass, Readability readability, Optional<Instant> restoredUntil) {
        public Placement {
            Objects.requireNonNull(storageClass, "storageClass");
            Objects.requireNonNull(readability, "readability");
            Objects.requireNonNull(restoredUntil, "restoredUntil");
        }

        public boolean readable() {
            return readability == Readability.READABLE || readability == Readability.RESTORED;
        }
    }
}
