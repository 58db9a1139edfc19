package io.tidemark.core.hypervisor;

import java.nio.file.Path;
import java.util.Map;

/**
 * Returning a running VM to other disk contents without restarting it: what a rollback needs from
 * a hypervisor. An adapter that can do it offers it through {@link Hypervisor#diskSwitch()}.
 */
public interface DiskSwitch {

    /** The image file behind each disk of {@code vm}, by disk name, as the hypervisor opened it. */
    Map<String, Path> imageFiles(String vm);

    /**
     * Pauses {@code vm}, moves each named disk onto its new image, resets the machine and lets it
     * run, so the guest boots from the new contents; the previous images stay on disk as they were.
     *
     * @param images the new image of each disk to switch, by disk name; each must have the disk's
     *     virtual size
     * @throws io.tidemark.core.PermanentException if the hypervisor refuses a step; disks switched
     *     before it stay switched and the guest is let run again
     */
    void switchDisks(String vm, Map<String, Path> images);
}
