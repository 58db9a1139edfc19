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
 * <p>The capture options ({@code consistency}, {@code fullEvery}, {@code readBytesPerSecond},
 * {@code readIopsPerSecond}) carry what the worker must honour from the policy; they are absent in
 * jobs written before they existed, which then mean the defaults (crash-consistent, no forced full,
 * no bandwidth or I/O limit).
 *
 * <p>{@code notAfter} bounds how long the job is worth starting: a scheduled job is superseded by
 * the policy's next firing, a hook's job by the pipeline giving up. A worker ends a job it could not
 * start by then with {@link JobFailed} ({@link FailureReason#EXPIRED}) instead of running it late.
 * Jobs written before it existed have none and never expire.
 *
 * @param vm the VM's name
 * @param host the host the VM runs on, which decides the topic
 * @param policy the policy that asked for it
 * @param trigger why
 * @param targets replication targets (by name) the restore point must reach
 * @param scheduledFor the fire time that produced the job
 * @param consistency the policy's consistency; empty means {@link ConsistencyPolicy#CRASH} (and so
 *     does a spelling this version does not know, see ADR 0010)
 * @param fullEvery force a full read when the VM's newest full restore point is at least this old
 * @param readBytesPerSecond the most the capture may read from the disks per second
 * @param notAfter the latest instant the job may start; empty means it never expires
 * @param readIopsPerSecond the most read requests the capture may send to the disks per second
 *     (one NBD read request is one I/O)
 */
public record SnapshotJob(
        String vm,
        String host,
        String policy,
        Trigger trigger,
        List<String> targets,
        Instant scheduledFor,
        Optional<ConsistencyPolicy> consistency,
        Optional<Duration> fullEvery,
        OptionalLong readBytesPerSecond,
        Optional<Instant> notAfter,
        OptionalLong readIopsPerSecond)
        implements EventPayload {

    public SnapshotJob {
        targets = List.copyOf(targets);
        Objects.requireNonNull(consistency, "consistency");
        Objects.requireNonNull(fullEvery, "fullEvery");
        Objects.requireNonNull(readBytesPerSecond, "readBytesPerSecond");
        Objects.requireNonNull(notAfter, "notAfter");
        Objects.requireNonNull(readIopsPerSecond, "readIopsPerSecond");
    }

    /** A job with capture options that never expires. */
    public SnapshotJob(
            String vm,
            String host,
            String policy,
            Trigger trigger,
            List<String> targets,
            Instant scheduledFor,
            Optional<ConsistencyPolicy> consistency,
            Optional<Duration> fullEvery,
            OptionalLong readBytesPerSecond) {
        this(
                vm,
                host,
                policy,
                trigger,
                targets,
                scheduledFor,
                consistency,
                fullEvery,
                readBytesPerSecond,
                Optional.empty(),
                OptionalLong.empty());
    }

    /** A job with the default capture options that never expires. */
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

    /**
     * This job with another trigger and fire time, the same VM, policy and capture options; its
     * validity moves with the fire time.
     */
    public SnapshotJob retriggered(Trigger newTrigger, Instant newScheduledFor) {
        Optional<Instant> moved = notAfter.map(n -> newScheduledFor.plus(Duration.between(scheduledFor, n)));
        return new SnapshotJob(
                vm,
                host,
                policy,
                newTrigger,
                targets,
                newScheduledFor,
                consistency,
                fullEvery,
                readBytesPerSecond,
                moved,
                readIopsPerSecond);
    }

    /** This job, to be started no later than {@code latestStart}. */
    public SnapshotJob validUntil(Instant latestStart) {
        return new SnapshotJob(
                vm,
                host,
                policy,
                trigger,
                targets,
                scheduledFor,
                consistency,
                fullEvery,
                readBytesPerSecond,
                Optional.of(latestStart),
                readIopsPerSecond);
    }

    /** This job with the read I/O limit {@code iopsPerSecond} (empty: none). */
    public SnapshotJob withReadIops(OptionalLong iopsPerSecond) {
        return new SnapshotJob(
                vm,
                host,
                policy,
                trigger,
                targets,
                scheduledFor,
                consistency,
                fullEvery,
                readBytesPerSecond,
                notAfter,
                iopsPerSecond);
    }

    /** Whether the job may no longer start at {@code now} (it has a {@code notAfter} before now). */
    public boolean expiredAt(Instant now) {
        return notAfter.filter(now::isAfter).isPresent();
    }

    /** The policy's consistency, {@link ConsistencyPolicy#CRASH} when the job carries none. */
    public ConsistencyPolicy consistencyOrDefault() {
        return consistency.orElse(ConsistencyPolicy.CRASH);
    }

    /** Whether the policy demands an application-consistent point (fail rather than fall back). */
    public boolean applicationConsistencyRequired() {
        return consistencyOrDefault() == ConsistencyPolicy.APPLICATION_REQUIRED;
    }

    /** Whether the policy asks for an application-consistent point when an agent answers. */
    public boolean applicationConsistencyWanted() {
        return consistencyOrDefault().wantsApplication();
    }
}
