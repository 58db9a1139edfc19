package io.tidemark.core.hypervisor;

import io.tidemark.core.event.ConsistencyPolicy;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;

/**
 * What to capture.
 *
 * @param vm the VM's name
 * @param sinceCheckpoint the checkpoint the parent restore point started, if there is a parent
 * @param newCheckpoint the name of the checkpoint this capture starts (recorded in the manifest)
 * @param workDir a private directory for scratch images and NBD sockets, removed by the caller
 * @param quiesce whether to freeze the guest's file systems around the snapshot moment
 * @param owner who owns the checkpoints (see {@link CheckpointNames#ownerOf}): when present, {@code
 *     newCheckpoint} must be {@link CheckpointNames#name named} for it, and an adapter treats as
 *     leftovers of an interrupted capture only checkpoints carrying this owner's prefix, so several
 *     repositories can protect one VM. Empty: every checkpoint with the adapter's prefix ({@code
 *     tm-}) is taken as ours (one repository per VM, the behaviour before owners existed).
 */
public record CaptureRequest(
        String vm,
        Optional<String> sinceCheckpoint,
        String newCheckpoint,
        Path workDir,
        ConsistencyPolicy quiesce,
        Optional<String> owner) {

    public CaptureRequest {
        Objects.requireNonNull(quiesce, "quiesce");
        Objects.requireNonNull(owner, "owner");
        owner.ifPresent(o -> {
            CheckpointNames.checkOwner(o);
            if (!newCheckpoint.startsWith(CheckpointNames.prefixOf(o))) {
                throw new IllegalArgumentException("checkpoint " + newCheckpoint + " of VM " + vm
                        + " must start with its owner's prefix " + CheckpointNames.prefixOf(o));
            }
        });
    }

    /** A capture whose checkpoints have no owner (see {@link #owner()}). */
    public CaptureRequest(
            String vm,
            Optional<String> sinceCheckpoint,
            String newCheckpoint,
            Path workDir,
            ConsistencyPolicy quiesce) {
        this(vm, sinceCheckpoint, newCheckpoint, workDir, quiesce, Optional.empty());
    }

    /** A crash-consistent capture ({@link ConsistencyPolicy#CRASH}) whose checkpoints have no owner. */
    public CaptureRequest(String vm, Optional<String> sinceCheckpoint, String newCheckpoint, Path workDir) {
        this(vm, sinceCheckpoint, newCheckpoint, workDir, ConsistencyPolicy.CRASH);
    }

    /**
     * The prefix of the checkpoints this capture may treat as its own leftovers: {@code
     * <adapterPrefix><owner>-}, or {@code adapterPrefix} when there is no owner.
     */
    public String leftoverPrefix(String adapterPrefix) {
        return owner.map(o -> adapterPrefix + o + "-").orElse(adapterPrefix);
    }
}
