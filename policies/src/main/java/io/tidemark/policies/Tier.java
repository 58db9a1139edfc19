package io.tidemark.policies;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * One storage tier of a policy ({@code tiers.<name>}): where restore points live for a while and in
 * which storage class.
 *
 * <p>Tiers at one location form a chain in file order: a point is written into the first tier of
 * its location, stays there for that tier's {@link #keep}, then moves to the next tier of the same
 * location for its {@code keep}, and so on; after the last tier it expires. Tiers at different
 * locations do not chain: each location holds its own copy from the point's capture.
 *
 * @param name the tier's name, {@code [a-z0-9-]+} when parsed ({@code hot}, {@code warm}, {@code cold})
 * @param location {@code local} or a target of the policy
 * @param storageClass the S3 storage class of the tier's objects ({@code STANDARD}, {@code GLACIER},
 *     {@code DEEP_ARCHIVE}, or a Ceph RGW placement storage class); empty = the target's own class
 * @param keep how long a point stays in this tier (positive)
 */
public record Tier(String name, String location, Optional<String> storageClass, Duration keep) {

    /** Storage classes whose objects must be restored (RestoreObject) before they can be read. */
    public static final java.util.Set<String> ARCHIVE_CLASSES = java.util.Set.of("GLACIER", "DEEP_ARCHIVE");

    public Tier {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(location, "location");
        Objects.requireNonNull(storageClass, "storageClass");
        Objects.requireNonNull(keep, "keep");
        if (keep.isNegative() || keep.isZero()) {
            throw new IllegalArgumentException("tier " + name + ": keep must be positive");
        }
    }

    /** True when objects in this tier must be restored before they can be read. */
    public boolean archive() {
        return storageClass.map(ARCHIVE_CLASSES::contains).orElse(false);
    }
}
