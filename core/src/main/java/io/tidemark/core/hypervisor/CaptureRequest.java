package io.tidemark.core.hypervisor;

import java.nio.file.Path;
import java.util.Optional;

/**
 * What to capture.
 *
 * @param vm the VM's name
 * @param sinceCheckpoint the checkpoint the parent restore point started, if there is a parent
 * @param newCheckpoint the name of the checkpoint this capture starts (recorded in the manifest)
 * @param workDir a private directory for scratch images and NBD sockets, removed by the caller
 */
public record CaptureRequest(String vm, Optional<String> sinceCheckpoint, String newCheckpoint, Path workDir) {}
