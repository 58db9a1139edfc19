package io.tidemark.scheduler;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.policies.Policy;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/** The one place a policy's capture options become part of a {@link SnapshotJob}. */
public final class SnapshotJobs {
    private SnapshotJobs() {}

    /**
     * The job that snapshots {@code vm} on {@code host} for {@code policy}, carrying the policy's
     * consistency, full cadence and read bandwidth limit to the worker.
     */
    public static SnapshotJob of(
            Policy policy, String vm, String host, Trigger trigger, List<String> targets, Instant scheduledFor) {
        return new SnapshotJob(
                vm,
                host,
                policy.name(),
                trigger,
                targets,
                scheduledFor,
                Optional.of(policy.consistency().yamlName()),
                policy.fullEvery(),
                policy.qos().readBytesPerSecond());
    }
}
