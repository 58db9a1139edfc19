package io.tidemark.core.repository;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The VM's definition as the capture saw it, stored in its restore point's manifest so that a
 * failover can start the VM as it ran (machine type, CPUs, memory, disks with bus and serial, NICs
 * with MACs and models) instead of a rehearsal VM. Optional in manifests: a point written before it
 * existed, or by an adapter that could not read it, has none.
 *
 * <p>Never carries a secret: adapters redact passwords and secret references before the definition
 * reaches a manifest, and {@link #redacted()} names (never quotes) what was removed.
 *
 * @param version the version of this element's layout ({@link #VERSION}); a reader that finds a
 *     newer one ignores the fields it does not know
 * @param source who described the VM: {@link #LIBVIRT} (the domain XML) or {@link #QMP} (what
 *     QEMU's monitor tells)
 * @param machine the machine type as the hypervisor reports it ({@code pc-q35-7.2})
 * @param arch the guest architecture ({@code x86_64})
 * @param cpus virtual CPUs
 * @param memoryBytes guest memory
 * @param cpuModel the CPU model or mode ({@code host-passthrough}, {@code qemu64}, ...), if known
 * @param firmware {@code bios}, {@code efi}, or the loader's path, if known
 * @param disks the VM's disks in its order
 * @param nics the VM's network interfaces in its order
 * @param domainXml libvirt only: the domain XML, with secrets removed
 * @param redacted where secrets were removed ({@code devices/graphics[vnc]/@passwd}), empty if none
 */
public record VmDefinition(
        int version,
        String source,
        String machine,
        String arch,
        int cpus,
        long memoryBytes,
        Optional<String> cpuModel,
        Optional<String> firmware,
        List<Disk> disks,
        List<Nic> nics,
        Optional<String> domainXml,
        List<String> redacted) {

    /** The layout version this code writes. */
    public static final int VERSION = 1;

    public static final String LIBVIRT = "libvirt";
    public static final String QMP = "qmp";

    public VmDefinition {
        Objects.requireNonNull(source, "source");
        disks = List.copyOf(disks);
        nics = List.copyOf(nics);
        redacted = List.copyOf(redacted);
    }

    /**
     * One disk.
     *
     * @param name the disk's name in the manifest ({@code vda}, or QEMU's device id)
     * @param bus {@code virtio}, {@code scsi}, {@code sata}, {@code ide}, {@code nvme}, ...
     * @param device the device model ({@code virtio-blk-pci}, {@code scsi-hd}), if known
     * @param serial the serial the guest sees, if set
     * @param format the image format at the source ({@code qcow2}, {@code raw}), if known
     */
    public record Disk(
            String name, String bus, Optional<String> device, Optional<String> serial, Optional<String> format) {}

    /**
     * One network interface.
     *
     * @param id the interface's name at the source (libvirt's target dev or alias, QEMU's device id)
     * @param mac its MAC address
     * @param model the device model ({@code virtio}, {@code virtio-net-pci}, {@code e1000})
     * @param network the libvirt network or bridge it was attached to ({@code network:prod},
     *     {@code bridge:br0}), or QEMU's netdev id; empty if not attached
     */
    public record Nic(String id, String mac, String model, Optional<String> network) {}

    /** One line: {@code pc-q35-7.2, 2 vCPU, 512 MiB, 2 disk(s), 1 NIC(s), libvirt}. */
    public String summary() {
        return machine + ", " + cpus + " vCPU"
                + cpuModel.map(m -> " (" + m + ")").orElse("") + ", "
                + (memoryBytes >> 20) + " MiB, " + disks.size() + " disk(s), " + nics.size() + " NIC(s)"
                + firmware.map(f -> ", firmware " + f).orElse("") + ", from " + source;
    }
}
