package io.tidemark.core.event;

import java.time.Instant;
import java.util.List;

/**
 * A request to snapshot one VM, routed to the worker on the VM's host. Handling it twice yields
 * one restore point: the job id is the idempotency key.
 *
 * @param vm the VM's name
 * @param host the host the VM runs on, which decides the topic
 * @param policy the policy that asked for it
 * @param trigger why
 * @param targets replication targets (by name) the restore point must reach
 * @param scheduledFor the fire time that produced the job
 */
public record SnapshotJob(
        String vm, String host, String policy, Trigger trigger, List<String> targets, Instant scheduledFor)
        implements EventPayload {
    public SnapshotJob {
        targets = List.copyOf(targets);
    }
}
