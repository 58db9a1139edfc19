package io.tidemark.workers.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.workers.rbd.RbdDisk;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One disk as {@code query-block} reports it: a device with an inserted medium and a guest device
 * (qdev).
 *
 * @param disk the disk's stable name: the last element of the qdev path (for virtio-blk, whose
 *     qdev ends in {@code /virtio-backend}, the element before it)
 * @param node the node name of the device's root node, where the bitmaps live
 * @param driver the root node's driver ({@code qcow2}, {@code raw}, ...)
 * @param canPersistBitmaps whether the node can store persistent bitmaps (qcow2 v3 only)
 * @param bitmaps the node's dirty bitmaps, including anonymous ones
 * @param rbd the RBD image under the node, when the disk is on Ceph (ADR 18)
 */
record BlockDevice(
        String disk,
        String node,
        long sizeBytes,
        String driver,
        boolean canPersistBitmaps,
        String imageDescription,
        List<Bitmap> bitmaps,
        Optional<RbdDisk> rbd) {

    /**
     * A dirty bitmap. Anonymous bitmaps (a busy bitmap's successor, block-copy's internal one) have
     * no name.
     */
    record Bitmap(Optional<String> name, boolean recording, boolean persistent, boolean inconsistent, boolean busy) {}

    BlockDevice {
        bitmaps = List.copyOf(bitmaps);
    }

    /**
     * True when the device's root node is the implicit copy-before-write filter of a running backup
     * job: {@code query-block} then shows the filter's node name and bitmaps, not the disk's.
     */
    boolean underJobFilter() {
        return driver.equals("copy-before-write");
    }

    DiskInfo info() {
        return new DiskInfo(disk, node, sizeBytes);
    }

    Optional<Bitmap> bitmap(String name) {
        return bitmaps.stream()
                .filter(b -> b.name().filter(name::equals).isPresent())
                .findFirst();
    }

    /** Parses the {@code return} value of {@code query-block}. */
    static List<BlockDevice> parse(JsonNode queryBlock) {
        List<BlockDevice> out = new ArrayList<>();
        for (JsonNode dev : queryBlock) {
            JsonNode inserted = dev.get("inserted");
            String qdev = dev.path("qdev").asText("");
            if (inserted == null || qdev.isEmpty()) {
                continue;
            }
            String driver = inserted.path("drv").asText("");
            JsonNode image = inserted.path("image");
            String compat =
                    image.path("format-specific").path("data").path("compat").asText("");
            boolean persistable = driver.equals("qcow2") && !compat.equals("0.10");
            String description = driver.equals("qcow2") && compat.equals("0.10") ? "qcow2 v2 (compat=0.10)" : driver;
            List<Bitmap> bitmaps = new ArrayList<>();
            for (JsonNode b : inserted.path("dirty-bitmaps")) {
                bitmaps.add(new Bitmap(
                        Optional.ofNullable(b.get("name")).map(JsonNode::asText),
                        b.path("recording").asBoolean(false),
                        b.path("persistent").asBoolean(false),
                        b.path("inconsistent").asBoolean(false),
                        b.path("busy").asBoolean(false)));
            }
            out.add(new BlockDevice(
                    diskName(qdev),
                    inserted.path("node-name").asText(),
                    image.path("virtual-size").asLong(),
                    driver,
                    persistable,
                    description,
                    bitmaps,
                    RbdDisk.fromQemuFilename(image.path("filename").asText(""))));
        }
        return out;
    }

    /** {@code vm-sd} → {@code vm-sd}; {@code /machine/peripheral/vd0/virtio-backend} → {@code vd0}. */
    static String diskName(String qdev) {
        String[] parts = qdev.split("/");
        int last = parts.length - 1;
        if (last > 0 && parts[last].equals("virtio-backend")) {
            last--;
        }
        return parts[last];
    }
}
