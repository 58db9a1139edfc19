package io.tidemark.core.event;

import java.util.Arrays;
import java.util.Optional;

/**
 * The consistency a capture achieved and a restore point has (see {@link ConsistencyPolicy} for
 * what a policy asks). Every capture is at least crash-consistent, so a reader that meets a level
 * it does not know may treat the point as {@link #CRASH} (ADR 0010).
 */
public enum ConsistencyAchieved {
    /** What a power cut would leave. */
    CRASH("crash"),
    /** The guest's file systems were flushed and frozen across the snapshot moment. */
    APPLICATION("application");

    private final String spelling;

    ConsistencyAchieved(String spelling) {
        this.spelling = spelling;
    }

    /** The spelling in manifests and command output, such as {@code application}. */
    public String spelling() {
        return spelling;
    }

    /** The constant spelled {@code spelling}, if any. */
    public static Optional<ConsistencyAchieved> fromSpelling(String spelling) {
        return Arrays.stream(values()).filter(c -> c.spelling.equals(spelling)).findFirst();
    }
}
