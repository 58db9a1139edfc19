package io.tidemark.core.repository;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The commit record of one restore point: a restore point exists if and only if its manifest
 * exists. Every restore point is logically full (each disk's index lists every chunk), so a
 * restore never replays a chain.
 *
 * @param formatVersion the repository format version the manifest was written with
 * @param id time-sortable restore point id
 * @param vm the VM's name
 * @param host the host the VM ran on
 * @param jobId the job that produced it (the idempotency key)
 * @param capturedAt the snapshot moment
 * @param committedAt when the manifest was written
 * @param consistency {@link ConsistencyAchieved#CRASH} or {@link ConsistencyAchieved#APPLICATION}
 *     (the guest's file systems were frozen across the snapshot moment)
 * @param trigger why it was taken
 * @param policy the policy's name
 * @param parent the previous restore point of this VM, if the capture was incremental to it
 * @param disks one entry per disk
 * @param consistencyReason why the point is only crash-consistent although the policy preferred
 *     application consistency (no guest agent answered, the freeze failed, ...); empty otherwise,
 *     and in manifests written before this field existed
 * @param definition the VM's definition as the capture saw it ({@link VmDefinition}); empty in
 *     manifests written before it existed and when the adapter could not read it
 */
public record Manifest(
        int formatVersion,
        String id,
        String vm,
        String host,
        String jobId,
        Instant capturedAt,
        Instant committedAt,
        ConsistencyAchieved consistency,
        Trigger trigger,
        String policy,
        Optional<String> parent,
        List<DiskEntry> disks,
        Optional<String> consistencyReason,
        Optional<VmDefinition> definition) {

    public Manifest {
        disks = List.copyOf(disks);
        Objects.requireNonNull(consistency, "consistency");
        Objects.requireNonNull(consistencyReason, "consistencyReason");
        Objects.requireNonNull(definition, "definition");
    }

    /** A manifest without a captured definition. */
    public Manifest(
            int formatVersion,
            String id,
            String vm,
            String host,
            String jobId,
            Instant capturedAt,
            Instant committedAt,
            ConsistencyAchieved consistency,
            Trigger trigger,
            String policy,
            Optional<String> parent,
            List<DiskEntry> disks,
            Optional<String> consistencyReason) {
        this(
                formatVersion,
                id,
                vm,
                host,
                jobId,
                capturedAt,
                committedAt,
                consistency,
                trigger,
                policy,
                parent,
                disks,
                consistencyReason,
                Optional.empty());
    }

    /** This manifest with {@code definition}. */
    public Manifest withDefinition(Optional<VmDefinition> definition) {
        return new Manifest(
                formatVersion,
                id,
                vm,
                host,
                jobId,
                capturedAt,
                committedAt,
                consistency,
                trigger,
                policy,
                parent,
                disks,
                consistencyReason,
                definition);
    }

    /** A manifest without a consistency reason. */
    public Manifest(
            int formatVersion,
            String id,
            String vm,
            String host,
            String jobId,
            Instant capturedAt,
            Instant committedAt,
            ConsistencyAchieved consistency,
            Trigger trigger,
            String policy,
            Optional<String> parent,
            List<DiskEntry> disks) {
        this(
                formatVersion,
                id,
                vm,
                host,
                jobId,
                capturedAt,
                committedAt,
                consistency,
                trigger,
                policy,
                parent,
                disks,
                Optional.empty(),
                Optional.empty());
    }

    public long bytesRead() {
        return disks.stream().mapToLong(DiskEntry::bytesRead).sum();
    }

    public long bytesNew() {
        return disks.stream().mapToLong(DiskEntry::bytesNew).sum();
    }

    public long sizeBytes() {
        return disks.stream().mapToLong(DiskEntry::sizeBytes).sum();
    }

    public boolean incremental() {
        return disks.stream().allMatch(d -> d.fullReason().isEmpty());
    }

    public Optional<DiskEntry> disk(String name) {
        return disks.stream().filter(d -> d.name().equals(name)).findFirst();
    }
}
