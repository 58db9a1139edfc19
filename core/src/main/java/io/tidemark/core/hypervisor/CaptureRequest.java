package io.tidemark.core.hypervisor;

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
 */
public record CaptureRequest(
        String vm, Optional<String> sinceCheckpoint, String newCheckpoint, Path workDir, Quiesce quiesce) {

    public CaptureRequest {
        Objects.requireNonNull(quiesce, "quiesce");
    }

    /** A crash-consistent capture ({@link Quiesce#NONE}). */
    public CaptureRequest(String vm, Optional<String> sinceCheckpoint, String newCheckpoint, Path workDir) {
        this(vm, sinceCheckpoint, newCheckpoint, workDir, Quiesce.NONE);
    }
}
