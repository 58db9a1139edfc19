package io.tidemark.scheduler.hook;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Returns running VMs to their pre-deploy restore points. Implemented by the engine that runs the
 * VMs (it alone talks to their monitors).
 */
@FunctionalInterface
public interface RollbackHandler {

    /**
     * One VM returned to a restore point.
     *
     * @param vm the VM
     * @param restorePointId the point it was returned to
     * @param capturedAt that point's snapshot moment
     * @param images the new image of each disk, by disk name (the previous images are left as they
     *     were, for forensics)
     * @param elapsed from the request to the VM running again
     */
    record RolledBack(
            String vm, String restorePointId, Instant capturedAt, Map<String, String> images, Duration elapsed) {
        public RolledBack {
            images = Map.copyOf(images);
        }
    }

    /**
     * Rolls back every VM the request covers, one after the other.
     *
     * @throws io.tidemark.core.PermanentException if no VM of this host has a matching pre-deploy
     *     point, or a VM's disks cannot be switched (the message says which VMs were already done)
     * @throws io.tidemark.core.RetriableException if the repository or a monitor is unavailable
     */
    List<RolledBack> apply(RollbackRequest request);
}
