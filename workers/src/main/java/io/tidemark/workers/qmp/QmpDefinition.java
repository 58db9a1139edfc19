package io.tidemark.workers.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.repository.VmDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What QEMU's monitor tells about a VM's definition (QEMU 7.2, verified): the machine type from
 * {@code qom-get /machine type} ({@code pc-q35-7.2-machine}), the CPUs and their model from {@code
 * query-cpus-fast} and the first CPU's QOM type ({@code qemu64-x86_64-cpu}), the memory from
 * {@code query-memory-size-summary}, each disk's device model and serial from {@code qom-get} on
 * its qdev path, each NIC's MAC from {@code query-rx-filter} and its model and netdev from {@code
 * qom-get}, and pflash firmware from {@code query-block}. QMP carries no secret in any of these.
 */
final class QmpDefinition {

    private QmpDefinition() {}

    /** The definition of the VM behind {@code qmp}, or empty with what failed logged by the caller. */
    static VmDefinition read(QmpClient qmp, List<BlockDevice> devices) {
        String machine = strip(
                qmp.execute("qom-get", QmpClient.args().put("path", "/machine").put("property", "type"))
                        .asText(""),
                "-machine");
        String arch = qmp.execute("query-target").path("arch").asText("x86_64");
        JsonNode cpus = qmp.execute("query-cpus-fast");
        Optional<String> cpuModel = Optional.empty();
        if (cpus.size() > 0 && cpus.get(0).hasNonNull("qom-path")) {
            cpuModel = Optional.of(
                            strip(qomGet(qmp, cpus.get(0).path("qom-path").asText(), "type"), "-" + arch + "-cpu"))
                    .filter(s -> !s.isEmpty());
        }
        JsonNode mem = qmp.execute("query-memory-size-summary");
        long memory =
                mem.path("base-memory").asLong() + mem.path("plugged-memory").asLong();
        JsonNode block = qmp.execute("query-block");
        Map<String, String> qdevOf = new HashMap<>();
        Optional<String> firmware = Optional.of("bios");
        for (JsonNode b : block) {
            String qdev = b.path("qdev").asText("");
            if (b.path("device").asText("").startsWith("pflash")) {
                firmware = Optional.of("efi");
            }
            if (!qdev.isEmpty()) {
                qdevOf.put(
                        BlockDevice.diskName(qdev),
                        qdev.endsWith("/virtio-backend")
                                ? qdev.substring(0, qdev.length() - "/virtio-backend".length())
                                : qdev);
            }
        }
        List<VmDefinition.Disk> disks = new ArrayList<>();
        for (BlockDevice d : devices) {
            String path = qdevOf.getOrDefault(d.disk(), "/machine/peripheral/" + d.disk());
            String type = qomGet(qmp, path, "type");
            Optional<String> serial = Optional.of(qomGet(qmp, path, "serial")).filter(s -> !s.isEmpty());
            disks.add(new VmDefinition.Disk(
                    d.disk(), bus(type), Optional.of(type).filter(s -> !s.isEmpty()), serial, Optional.of(d.driver())));
        }
        List<VmDefinition.Nic> nics = new ArrayList<>();
        JsonNode filters;
        try {
            filters = qmp.execute("query-rx-filter");
        } catch (TidemarkException e) { // QEMU answers an error when the VM has no NIC that supports it
            filters = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.arrayNode();
        }
        for (JsonNode f : filters) {
            String name = f.path("name").asText();
            String path = "/machine/peripheral/" + name;
            String netdev = qomGet(qmp, path, "netdev");
            nics.add(new VmDefinition.Nic(
                    name,
                    f.path("main-mac").asText(),
                    qomGet(qmp, path, "type"),
                    netdev.isEmpty() ? Optional.empty() : Optional.of(netdev)));
        }
        return new VmDefinition(
                VmDefinition.VERSION,
                VmDefinition.QMP,
                machine,
                arch,
                Math.max(1, cpus.size()),
                memory,
                cpuModel,
                firmware,
                disks,
                nics,
                Optional.empty(),
                List.of());
    }

    /** The bus of a QEMU block device model. */
    static String bus(String deviceType) {
        if (deviceType.startsWith("virtio-blk")) {
            return "virtio";
        }
        if (deviceType.startsWith("scsi-")) {
            return "scsi";
        }
        if (deviceType.startsWith("ide-")) {
            return "ide";
        }
        if (deviceType.startsWith("nvme")) {
            return "nvme";
        }
        if (deviceType.startsWith("usb-")) {
            return "usb";
        }
        return deviceType.isEmpty() ? "unknown" : deviceType;
    }

    private static String qomGet(QmpClient qmp, String path, String property) {
        try {
            return qmp.execute("qom-get", QmpClient.args().put("path", path).put("property", property))
                    .asText("");
        } catch (TidemarkException e) { // a device without that property (no serial on scsi-cd, ...)
            if (!qmp.isOpen()) {
                throw e;
            }
            return "";
        }
    }

    private static String strip(String s, String suffix) {
        return s.endsWith(suffix) ? s.substring(0, s.length() - suffix.length()) : s;
    }
}
