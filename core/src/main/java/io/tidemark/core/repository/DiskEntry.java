package io.tidemark.core.repository;

import io.tidemark.core.event.FullReason;
import java.util.Optional;

/**
 * One disk of a restore point.
 *
 * @param name the disk's name within the VM
 * @param sizeBytes virtual size
 * @param chunkSize bytes per chunk (the last chunk may be shorter)
 * @param index digest of the disk's index root object
 * @param checkpoint the change-tracking checkpoint started at the snapshot moment
 * @param fullReason why the whole disk was read; empty when only the changed extents were read
 * @param bytesRead bytes read from the hypervisor
 * @param bytesNew bytes of chunks (before compression) that the repository did not hold yet
 */
public record DiskEntry(
        String name,
        long sizeBytes,
        int chunkSize,
        String index,
        String checkpoint,
        Optional<FullReason> fullReason,
        long bytesRead,
        long bytesNew) {}
