package io.tidemark.core.hypervisor;

import io.tidemark.core.event.FullReason;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * One captured disk, readable over NBD.
 *
 * @param disk the disk's name (see {@link DiskInfo#name()})
 * @param sizeBytes virtual size
 * @param nbdSocket Unix socket of the NBD server
 * @param exportName NBD export name
 * @param dirtyBitmapContext NBD meta context (for example {@code qemu:dirty-bitmap:tm-...}) listing
 *     the extents changed since the parent checkpoint; empty when the whole disk must be read
 * @param fullReason why the whole disk must be read (first backup, bitmap inconsistent after a
 *     crash, ...); empty for an incremental
 * @param changedRanges for an incremental without a dirty-bitmap context: the ranges that the
 *     storage itself says changed since the parent checkpoint (an RBD snapshot diff, ADR 18), sorted
 *     and not overlapping; every other range is unchanged
 * @param snapshotOfChangesOnly whether the export keeps the snapshot moment only for the blocks
 *     that hold a change of {@code dirtyBitmapContext} (see {@link CaptureRequest#changesOnly()}):
 *     only those may be read from it (QEMU refuses the rest)
 */
public record DiskExport(
        String disk,
        long sizeBytes,
        Path nbdSocket,
        String exportName,
        Optional<String> dirtyBitmapContext,
        Optional<FullReason> fullReason,
        Optional<List<ChangedRange>> changedRanges,
        boolean snapshotOfChangesOnly) {

    /** An export that holds the snapshot moment for the whole disk. */
    public DiskExport(
            String disk,
            long sizeBytes,
            Path nbdSocket,
            String exportName,
            Optional<String> dirtyBitmapContext,
            Optional<FullReason> fullReason,
            Optional<List<ChangedRange>> changedRanges) {
        this(disk, sizeBytes, nbdSocket, exportName, dirtyBitmapContext, fullReason, changedRanges, false);
    }

    public DiskExport {
        if (snapshotOfChangesOnly && dirtyBitmapContext.isEmpty()) {
            throw new IllegalArgumentException("a snapshot of the changes only needs the dirty-bitmap context");
        }
        changedRanges = changedRanges.map(List::copyOf);
        int set = (dirtyBitmapContext.isPresent() ? 1 : 0)
                + (fullReason.isPresent() ? 1 : 0)
                + (changedRanges.isPresent() ? 1 : 0);
        if (set != 1) {
            throw new IllegalArgumentException(
                    "exactly one of dirtyBitmapContext, changedRanges and fullReason must be set");
        }
    }

    public boolean incremental() {
        return fullReason.isEmpty();
    }
}
