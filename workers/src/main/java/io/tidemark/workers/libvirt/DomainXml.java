package io.tidemark.workers.libvirt;

import static io.tidemark.workers.libvirt.LibvirtXml.child;
import static io.tidemark.workers.libvirt.LibvirtXml.children;
import static io.tidemark.workers.libvirt.LibvirtXml.parse;

import io.tidemark.workers.rbd.RbdDisk;
import io.tidemark.workers.rbd.RbdImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.w3c.dom.Element;

/** The few facts this adapter reads from libvirt's domain, checkpoint and backup XML. */
final class DomainXml {

    private DomainXml() {}

    /**
     * One disk of a domain ({@code <disk device='disk'>}).
     *
     * @param target the target device name ({@code vda}), the disk's name in manifests
     * @param format the driver type ({@code qcow2}, {@code raw}, ...)
     * @param source the image file, block device or network volume
     * @param index libvirt's index of the source in the live XML (its QEMU node is {@code
     *     libvirt-<index>-format}); -1 when absent
     * @param rbd the RBD image of a network disk with {@code protocol='rbd'}, and how to reach its
     *     cluster (the source's {@code <config file>} and {@code <auth username>}); empty otherwise
     */
    record Disk(String target, String format, String source, int index, Optional<RbdDisk> rbd) {

        Disk(String target, String format, String source, int index) {
            this(target, format, source, index, Optional.empty());
        }
    }

    /** The guest disks of a domain, in the domain's order; CD-ROMs and floppies are not backed up. */
    static List<Disk> disks(String domainXml) {
        List<Disk> out = new ArrayList<>();
        for (Element disk :
                children(child(parse(domainXml, "libvirt's domain XML").getDocumentElement(), "devices"), "disk")) {
            if (!"disk".equals(disk.getAttribute("device"))) {
                continue;
            }
            String target = attribute(disk, "target", "dev");
            if (target.isEmpty()) {
                continue;
            }
            Element src = child(disk, "source");
            String source = src == null
                    ? ""
                    : first(src.getAttribute("file"), src.getAttribute("dev"), src.getAttribute("name"));
            String index = src == null ? "" : src.getAttribute("index");
            out.add(new Disk(
                    target,
                    attribute(disk, "driver", "type"),
                    source,
                    index.matches("[0-9]{1,9}") ? Integer.parseInt(index) : -1,
                    "network".equals(disk.getAttribute("type")) ? rbd(disk, src) : Optional.empty()));
        }
        return out;
    }

    /**
     * The RBD image of {@code <source protocol='rbd' name='pool[/namespace]/image'>}, with the
     * source's {@code <config file>} and the {@code <auth username>} (of the disk or the source),
     * or empty for another protocol or a name that is not an RBD image spec.
     */
    private static Optional<RbdDisk> rbd(Element disk, Element src) {
        if (src == null || !"rbd".equals(src.getAttribute("protocol"))) {
            return Optional.empty();
        }
        String[] parts = src.getAttribute("name").split("/", -1);
        RbdImage image;
        try {
            image = switch (parts.length) {
                case 2 -> RbdImage.of(parts[0], parts[1]);
                case 3 -> new RbdImage(parts[0], Optional.of(parts[1]), parts[2]);
                default -> null;
            };
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
        if (image == null || image.name().contains("@")) {
            return Optional.empty();
        }
        String conf = attribute(src, "config", "file");
        String user = attribute(src, "auth", "username");
        if (user.isEmpty()) {
            user = attribute(disk, "auth", "username");
        }
        return Optional.of(new RbdDisk(
                image,
                conf.isEmpty() ? Optional.empty() : Optional.of(Path.of(conf)),
                user.isEmpty() ? Optional.empty() : Optional.of(user)));
    }

    /** Per disk of a checkpoint's XML: its {@code checkpoint} attribute ({@code bitmap} or {@code no}). */
    static Map<String, String> checkpointDisks(String checkpointXml) {
        Map<String, String> out = new HashMap<>();
        Element disks = child(parse(checkpointXml, "libvirt's checkpoint XML").getDocumentElement(), "disks");
        for (Element d : children(disks, "disk")) {
            out.put(d.getAttribute("name"), d.getAttribute("checkpoint"));
        }
        return out;
    }

    /**
     * One disk of a running backup job's XML.
     *
     * @param exportName the NBD export name
     * @param exportBitmap the dirty bitmap exported with it, for an incremental disk
     */
    record BackupDisk(String exportName, Optional<String> exportBitmap) {}

    /** Per disk name: how the running backup job exports it. */
    static Map<String, BackupDisk> backupDisks(String backupXml) {
        Map<String, BackupDisk> out = new HashMap<>();
        Element disks = child(parse(backupXml, "libvirt's backup XML").getDocumentElement(), "disks");
        for (Element d : children(disks, "disk")) {
            if (!"yes".equals(d.getAttribute("backup"))) {
                continue;
            }
            String bitmap = d.getAttribute("exportbitmap");
            out.put(
                    d.getAttribute("name"),
                    new BackupDisk(
                            first(d.getAttribute("exportname"), d.getAttribute("name")),
                            bitmap.isEmpty() ? Optional.empty() : Optional.of(bitmap)));
        }
        return out;
    }

    private static String attribute(Element parent, String child, String attribute) {
        Element c = child(parent, child);
        return c == null ? "" : c.getAttribute(attribute);
    }

    private static String first(String... values) {
        for (String v : values) {
            if (!v.isEmpty()) {
                return v;
            }
        }
        return "";
    }
}
