package io.tidemark.core.event;

import java.util.Arrays;
import java.util.Optional;

/**
 * The point-in-time consistency a policy asks for: what a {@link SnapshotJob} carries to the
 * worker and what a capture request tells the hypervisor (see {@link ConsistencyAchieved} for what
 * a restore point has). One type from the policy file to the capture (ADR 0010).
 */
public enum ConsistencyPolicy {
    /** Disks captured atomically without the guest's help, as after a power cut. The default. */
    CRASH("crash"),
    /** Freeze the guest's file systems through its agent when there is one; otherwise crash-consistent. */
    APPLICATION_PREFERRED("application-preferred"),
    /** Freeze the guest's file systems through its agent, or fail the job. */
    APPLICATION_REQUIRED("application-required");

    private final String spelling;

    ConsistencyPolicy(String spelling) {
        this.spelling = spelling;
    }

    /** The spelling in policy files and in events, such as {@code application-preferred}. */
    public String spelling() {
        return spelling;
    }

    /** The constant spelled {@code spelling}, if any. */
    public static Optional<ConsistencyPolicy> fromSpelling(String spelling) {
        return Arrays.stream(values()).filter(c -> c.spelling.equals(spelling)).findFirst();
    }

    /** Whether the guest should be asked to freeze (preferred or required). */
    public boolean wantsApplication() {
        return this != CRASH;
    }
}
