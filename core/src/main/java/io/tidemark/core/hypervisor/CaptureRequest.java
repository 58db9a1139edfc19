package io.tidemark.core.hypervisor;

import io.tidemark.core.event.ConsistencyPolicy;
import java.nio.file.Path;
import java.util.Map;
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
 * @param changesOnly the disks whose caller will read, if their capture is incremental, only the
 *     blocks that hold a change since {@code sinceCheckpoint}: an adapter may then snapshot only
 *     those blocks (a write elsewhere goes ahead without a copy) and says so in {@link
 *     DiskExport#snapshotOfChangesOnly()}; {@link ChangesOnly#NONE}: every disk is snapshot whole.
 */
public record CaptureRequest(
        String vm,
        Optional<String> sinceCheckpoint,
        String newCheckpoint,
        Path workDir,
        ConsistencyPolicy quiesce,
        Optional<String> owner,
        ChangesOnly changesOnly) {

    public CaptureRequest {
        Objects.requireNonNull(quiesce, "quiesce");
        Objects.requireNonNull(owner, "owner");
        Objects.requireNonNull(changesOnly, "changesOnly");
        owner.ifPresent(o -> {
            CheckpointNames.checkOwner(o);
            if (!newCheckpoint.startsWith(CheckpointNames.prefixOf(o))) {
                throw new IllegalArgumentException("checkpoint " + newCheckpoint + " of VM " + vm
                        + " must start with its owner's prefix " + CheckpointNames.prefixOf(o));
            }
        });
    }

    /** A capture that snapshots every disk whole (see {@link #changesOnly()}). */
    public CaptureRequest(
            String vm,
            Optional<String> sinceCheckpoint,
            String newCheckpoint,
            Path workDir,
            ConsistencyPolicy quiesce,
            Optional<String> owner) {
        this(vm, sinceCheckpoint, newCheckpoint, workDir, quiesce, owner, ChangesOnly.NONE);
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
     * The disks a caller reads by their changes alone, and in which blocks it reads them.
     *
     * @param disks disk name → the size in bytes at which it is read so (another size is read whole)
     * @param blockBytes the caller reads every block of this size (a power of two) that holds a
     *     change, whole: the blocks an adapter must keep as they were at the snapshot moment
     */
    public record ChangesOnly(Map<String, Long> disks, int blockBytes) {

        /** No disk: every disk is snapshot whole. */
        public static final ChangesOnly NONE = new ChangesOnly(Map.of(), 0);

        public ChangesOnly {
            disks = Map.copyOf(disks);
            if (!disks.isEmpty() && (blockBytes < 512 || Integer.bitCount(blockBytes) != 1)) {
                throw new IllegalArgumentException(
                        "blockBytes must be a power of two of at least 512, not " + blockBytes);
            }
        }

        /** Whether disk {@code disk} of {@code sizeBytes} is read by its changed blocks alone. */
        public boolean covers(String disk, long sizeBytes) {
            return Long.valueOf(sizeBytes).equals(disks.get(disk));
        }
    }

    /**
     * The prefix of the checkpoints this capture may treat as its own leftovers: {@code
     * <adapterPrefix><owner>-}, or {@code adapterPrefix} when there is no owner.
     */
    public String leftoverPrefix(String adapterPrefix) {
        return owner.map(o -> adapterPrefix + o + "-").orElse(adapterPrefix);
    }
}
