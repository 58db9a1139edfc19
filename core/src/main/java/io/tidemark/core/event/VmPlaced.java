package io.tidemark.core.event;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The worker on {@code host} sees {@code vm} running there, on the compacted {@code
 * tidemark.inventory} topic keyed by the VM name. Published when the VM appears or changes (disks,
 * labels) and again periodically as a heartbeat; the latest record per VM is what the scheduler
 * routes by.
 *
 * @param vm the VM's name, unique across the installation
 * @param host the hypervisor host the VM runs on
 * @param labels the VM's labels, matched by policy selectors
 * @param disks the VM's disks, by name, with their virtual sizes
 * @param seenAt when the host listed the VM (the host's clock)
 */
public record VmPlaced(String vm, String host, Map<String, String> labels, List<Disk> disks, Instant seenAt)
        implements EventPayload {
    public VmPlaced {
        Objects.requireNonNull(vm, "vm");
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(seenAt, "seenAt");
        labels = Map.copyOf(labels);
        disks = List.copyOf(disks);
    }

    /** True if {@code other} says the same about the VM (host, labels, disks), whenever it was seen. */
    public boolean sameAs(VmPlaced other) {
        return vm.equals(other.vm)
                && host.equals(other.host)
                && labels.equals(other.labels)
                && disks.equals(other.disks);
    }

    /**
     * One disk of the VM.
     *
     * @param name the disk's stable name within its VM
     * @param sizeBytes its virtual size
     */
    public record Disk(String name, long sizeBytes) {
        public Disk {
            Objects.requireNonNull(name, "name");
        }
    }
}
