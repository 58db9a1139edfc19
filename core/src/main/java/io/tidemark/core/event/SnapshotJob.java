package io.tidemark.core.event;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * A request to snapshot one VM, routed to the worker on the VM's host. Handling it twice yields
 * one restore point: the job id is the idempotency key.
 *
 * <p>The last three components carry what the worker must honour from the policy; they are absent
 * in jobs written before they existed, which then mean the defaults (crash-consistent, no forced
 * full, no bandwidth limit).
 *
 * @param vm the VM's name
 * @param host the host the VM runs on, which decides the topic
 * @param policy the policy that asked for it
 * @param trigger why
 * @param targets replication targets (by name) the restore point must reach
 * @param scheduledFor the fire time that produced the job
 * @param consistency the policy's consistency in its policy spelling ({@code crash}, {@code
 *     application-preferred} or {@code application-required}); empty means {@code crash}
 * @param fullEvery force a full read when the VM's newest full restore point is at least this old
 * @param readBytesPerSecond the most the capture may read from the disks per second
 */
public record SnapshotJob(
        String vm,
        String host,
        String policy,
        Trigger trigger,
        List<String> targets,
        Instant scheduledFor,
        Optional<String> consistency,
        Optional<Duration> fullEvery,
        OptionalLong readBytesPerSecond)
        implements EventPayload {

    public SnapshotJob {
        targets = List.copyOf(targets);
        Objects.requireNonNull(consistency, "consistency");
        Objects.requireNonNull(fullEvery, "fullEvery");
        Objects.requireNonNull(readBytesPerSecond, "readBytesPerSecond");
    }

    /** A job with the default capture options. */
    public SnapshotJob(
            String vm, String host, String policy, Trigger trigger, List<String> targets, Instant scheduledFor) {
        this(
                vm,
                host,
                policy,
                trigger,
                targets,
                scheduledFor,
                Optional.empty(),
                Optional.empty(),
                OptionalLong.empty());
    }

    /** This job with another trigger and fire time, the same VM, policy and capture options. */
    public SnapshotJob retriggered(Trigger newTrigger, Instant newScheduledFor) {
        return new SnapshotJob(
                vm, host, policy, newTrigger, targets, newScheduledFor, consistency, fullEvery, readBytesPerSecond);
    }

    /** Whether the policy demands an application-consistent point (fail rather than fall back). */
    public boolean applicationConsistencyRequired() {
        return consistency.filter("application-required"::equals).isPresent();
    }

    /** Whether the policy asks for an application-consistent point when an agent answers. */
    public boolean applicationConsistencyWanted() {
        return consistency.filter(c -> c.startsWith("application-")).isPresent();
    }
}
