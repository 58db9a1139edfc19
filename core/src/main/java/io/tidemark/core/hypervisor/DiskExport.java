package io.tidemark.core.hypervisor;

import io.tidemark.core.event.FullReason;
import java.nio.file.Path;
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
 */
public record DiskExport(
        String disk,
        long sizeBytes,
        Path nbdSocket,
        String exportName,
        Optional<String> dirtyBitmapContext,
        Optional<FullReason> fullReason) {

    public DiskExport {
        if (dirtyBitmapContext.isPresent() == fullReason.isPresent()) {
            throw new IllegalArgumentException("exactly one of dirtyBitmapContext and fullReason must be set");
        }
    }

    public boolean incremental() {
        return dirtyBitmapContext.isPresent();
    }
}
