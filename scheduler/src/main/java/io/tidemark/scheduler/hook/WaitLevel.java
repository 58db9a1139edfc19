package io.tidemark.scheduler.hook;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * How far the snapshots of a pre-deploy hook must get before the deploy may go on. Each level
 * implies the ones before it: a committed restore point was captured, a replicated one committed.
 */
public enum WaitLevel {
    /** Every VM's point in time is frozen ({@code SnapshotCaptured}); its data may still be read. Fast. */
    CAPTURED,
    /** Every VM's restore point is committed in the primary repository ({@code RestorePointCreated}). */
    COMMITTED,
    /**
     * Every VM's restore point is committed on every replication target of its policy ({@code
     * ReplicaCommitted}); for a policy with no targets this is {@link #COMMITTED}.
     */
    REPLICATED;

    /** The name on the wire and on the command line: {@code captured}, {@code committed}, {@code replicated}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The level called {@code name} (its {@link #wireName()}), if any. */
    public static Optional<WaitLevel> parse(String name) {
        return Arrays.stream(values()).filter(l -> l.wireName().equals(name)).findFirst();
    }

    /** The wire names, comma-separated, for messages. */
    public static String wireNames() {
        return Arrays.stream(values()).map(WaitLevel::wireName).collect(Collectors.joining(", "));
    }
}
