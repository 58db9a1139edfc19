package io.tidemark.workers.instant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.BootReadLog;
import io.tidemark.repository.Repository;
import io.tidemark.workers.nbd.NbdServer;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Instant restore of one disk of a restore point: the point is served over NBD straight from its
 * repository, a local qcow2 overlay is created on top of it (guest writes land there, the
 * repository is never written), and a VM can use the overlay at once. {@link #hydrate} then copies
 * the whole disk to a local image with a live {@code blockdev-mirror} and pivots the VM onto it
 * without stopping the guest; after that the overlay and the NBD server are no longer needed.
 *
 * <p>Files in {@code dir}: {@code <disk>.nbd} (the NBD Unix socket; keep {@code dir} short, socket
 * paths are limited to about 107 bytes) and {@code <disk>-overlay.qcow2}.
 *
 * <p>Not thread-safe: one flow drives it. {@link #close()} stops the NBD server; a VM still reading
 * through the overlay then gets I/O errors, so close only after {@link #detach} (or when the VM is
 * gone).
 */
public final class InstantRestore implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(InstantRestore.class);

    /** How often a running mirror's progress is polled. */
    private static final Duration POLL = Duration.ofMillis(200);

    /**
     * Tuning: the chunk cache, the NBD worker threads, how long a mirror may take to become ready,
     * its speed limit in bytes/s (0: unlimited), and the boot-read prefetch and recording.
     */
    public record Options(
            RestorePointExport.Options cache,
            int serverThreads,
            Duration mirrorTimeout,
            long mirrorSpeed,
            BootReads.Options bootReads) {
        public static Options defaults() {
            return new Options(
                    RestorePointExport.Options.defaults(), 16, Duration.ofHours(12), 0, BootReads.Options.defaults());
        }

        public Options withBootReads(BootReads.Options b) {
            return new Options(cache, serverThreads, mirrorTimeout, mirrorSpeed, b);
        }
    }

    /** Receives hydration progress: bytes copied so far, of {@code total} (which may grow). */
    @FunctionalInterface
    public interface Progress {
        void update(long done, long total);

        Progress NONE = (done, total) -> {};
    }

    /** What a hydration did. */
    public record Hydration(Path image, String format, String node, long bytesCopied, Duration elapsed) {}

    private final Manifest point;
    private final String disk;
    private final RestorePointExport export;
    private final NbdServer server;
    private final Path overlay;
    private final Options options;
    private final BootReads bootReads;

    private InstantRestore(
            Manifest point,
            String disk,
            RestorePointExport export,
            NbdServer server,
            Path overlay,
            Options options,
            BootReads bootReads) {
        this.point = point;
        this.disk = disk;
        this.export = export;
        this.server = server;
        this.overlay = overlay;
        this.options = options;
        this.bootReads = bootReads;
    }

    /**
     * Serves disk {@code disk} of {@code point} on {@code dir/<disk>.nbd} and creates {@code
     * dir/<disk>-overlay.qcow2} backed by it. An existing overlay is an error: it may hold a
     * guest's writes. Boot reads are prefetched and recorded as {@link Options#bootReads()} says
     * (see {@link BootReads}): the prefetch starts before the server, so it runs while the VM starts.
     */
    public static InstantRestore start(Repository repository, Manifest point, String disk, Path dir, Options options) {
        Path abs = dir.toAbsolutePath();
        Path overlay = abs.resolve(disk + "-overlay.qcow2");
        if (Files.exists(overlay)) {
            throw new PermanentException("the overlay " + overlay
                    + " already exists; it may hold a running VM's writes. Use another directory or remove it");
        }
        try {
            Files.createDirectories(abs);
        } catch (IOException e) {
            throw new PermanentException("cannot create " + abs + ": " + e.getMessage(), e);
        }
        RestorePointExport export = RestorePointExport.open(repository, point, disk, options.cache());
        BootReads bootReads = BootReads.start(
                new BootReadLog(repository.target()), point, disk, export, options.bootReads(), Clock.systemUTC());
        NbdServer server;
        try {
            server = NbdServer.unix(abs.resolve(disk + ".nbd"), export, options.serverThreads());
        } catch (RuntimeException e) {
            bootReads.close();
            export.close();
            throw e;
        }
        try {
            run("qemu-img", "create", "-q", "-f", "qcow2", "-b", server.uri(), "-F", "raw", overlay.toString());
        } catch (RuntimeException e) {
            server.close();
            bootReads.close();
            export.close();
            throw e;
        }
        log.info(
                "instant restore of disk '{}' of {} ({}): overlay {} on {}",
                disk,
                point.id(),
                point.vm(),
                overlay,
                server.uri());
        return new InstantRestore(point, disk, export, server, overlay, options, bootReads);
    }

    public Manifest point() {
        return point;
    }

    public String disk() {
        return disk;
    }

    /** The qcow2 overlay a VM opens; its backing file is {@link #nbdUri()}. */
    public Path overlay() {
        return overlay;
    }

    /** The NBD URI of the restore point (the overlay's backing file). */
    public String nbdUri() {
        return server.uri();
    }

    public NbdServer server() {
        return server;
    }

    public RestorePointExport export() {
        return export;
    }

    /** The boot-read prefetch and recording of this restore. */
    public BootReads bootReads() {
        return bootReads;
    }

    /**
     * The {@code -blockdev} options that give a QEMU started by hand the overlay as node {@code
     * node}; add {@code -device virtio-blk-pci,drive=NODE} (or scsi-hd) to attach it.
     */
    public List<String> blockdevArgs(String node) {
        return List.of(
                "-blockdev",
                "driver=qcow2,node-name=" + node + ",file.driver=file,file.filename="
                        + overlay.toString().replace(",", ",,"));
    }

    /**
     * Opens the overlay in a running QEMU as block node {@code node} ({@code blockdev-add}); the
     * NBD backing is opened from the overlay's header. Attach a device to it with {@code
     * device_add … drive=NODE}.
     */
    public void attach(QmpClient qmp, String node) {
        ObjectNode args = QmpClient.args().put("driver", "qcow2").put("node-name", node);
        args.putObject("file").put("driver", "file").put("filename", overlay.toString());
        qmp.execute("blockdev-add", args);
    }

    /** The QOM types of PCIe slots a device can be hot-plugged into (QEMU 7.2). */
    private static final List<String> HOTPLUG_PORTS =
            List.of("child<pcie-root-port>", "child<ioh3420>", "child<xio3130-downstream>");

    /**
     * The bus a PCI device (virtio-blk-pci, virtio-scsi-pci, nvme…) is hot-plugged on in the QEMU
     * behind {@code qmp}. Empty when the machine's root bus takes hot-plugged devices (i440fx, whose
     * {@code pci.0} does; QEMU then picks a free slot). On q35 the root bus {@code pcie.0} does not
     * ({@code device_add} fails with "Bus 'pcie.0' does not support hotplugging"), so this is the id
     * of the first free PCIe root port (also {@code ioh3420}, {@code xio3130-downstream}) with
     * hotplug on, among the devices that have an id ({@code /machine/peripheral}). The machine type
     * is {@code qom-get /machine type}; a port is free when nothing sits on its secondary bus.
     *
     * @throws PermanentException on q35 without a free port, saying how to start the VM with one
     */
    public static Optional<String> pciHotplugBus(QmpClient qmp) {
        String machine = qmp.execute(
                        "qom-get", QmpClient.args().put("path", "/machine").put("property", "type"))
                .asText();
        if (!machine.contains("q35")) {
            return Optional.empty();
        }
        List<String> taken = new ArrayList<>();
        for (PcieSlot port : pcieSlots(qmp)) {
            if (port.free()) {
                return Optional.of(port.bus());
            }
            taken.add(port.id() + (port.hotplug() ? " (in use)" : " (hotplug off)"));
        }
        throw new PermanentException("the VM behind " + qmp.socket() + " is a q35 machine (" + machine
                + "): its root bus pcie.0 does not take hot-plugged devices (\"Bus 'pcie.0' does not support"
                + " hotplugging\"), and it has no free PCIe root port with an id"
                + (taken.isEmpty() ? "" : " (" + String.join(", ", taken) + ")")
                + ". Start the VM with a spare one, e.g. -device pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9"
                + " (chassis unique per port; libvirt: <controller type='pci' model='pcie-root-port'/>), name a"
                + " bus with --bus, or attach to an existing SCSI controller (--device scsi-hd,bus=scsi0.0)."
                + " Runbook: docs/runbooks/instant-restore.md");
    }

    /**
     * Refuses a PCIe port's bus that already holds a device: QEMU 7.2 accepts a second device there
     * at slot 1, where a guest normally does not see it (a PCIe link has one device, slot 0). Other
     * buses are left to QEMU.
     */
    public static void checkPciBus(QmpClient qmp, String bus) {
        for (PcieSlot port : pcieSlots(qmp)) {
            if (port.bus().equals(bus) && !port.empty()) {
                throw new PermanentException("bus '" + bus + "' is the PCIe port " + port.id()
                        + ", which already holds a device; a second one there would be invisible to the guest."
                        + " Choose a free port, or leave out --bus to let Tidemark pick one");
            }
        }
    }

    /** A hot-plug-capable PCIe port with an id, its secondary bus, and whether a device sits on it. */
    private record PcieSlot(String id, String bus, boolean hotplug, boolean empty) {
        boolean free() {
            return hotplug && empty;
        }
    }

    private static List<PcieSlot> pcieSlots(QmpClient qmp) {
        List<PcieSlot> out = new ArrayList<>();
        for (JsonNode dev : qmp.execute("qom-list", QmpClient.args().put("path", "/machine/peripheral"))) {
            if (!HOTPLUG_PORTS.contains(dev.path("type").asText())) {
                continue;
            }
            String id = dev.path("name").asText();
            String path = "/machine/peripheral/" + id;
            boolean hotplug = true;
            String bus = null;
            for (JsonNode prop : qmp.execute("qom-list", QmpClient.args().put("path", path))) {
                String name = prop.path("name").asText();
                if (name.equals("hotplug")) {
                    hotplug = qmp.execute(
                                    "qom-get",
                                    QmpClient.args().put("path", path).put("property", "hotplug"))
                            .asBoolean(true);
                } else if (prop.path("type").asText().equals("child<PCIE>")) {
                    bus = name;
                }
            }
            if (bus == null) {
                continue;
            }
            boolean empty = true;
            for (JsonNode prop : qmp.execute("qom-list", QmpClient.args().put("path", path + "/" + bus))) {
                if (prop.path("name").asText().startsWith("child[")) {
                    empty = false;
                }
            }
            out.add(new PcieSlot(id, bus, hotplug, empty));
        }
        return out;
    }

    /**
     * Copies the whole disk under {@code sourceNode} (the overlay node a device uses) to a new local
     * image and pivots the device onto it, while the guest runs and writes: {@link #startMirror},
     * {@link #awaitReady}, {@link #pivot}. When this returns, the device reads and writes {@code
     * targetNode} only; {@link #detach} the overlay and {@link #close()} the server next.
     *
     * @param format {@code qcow2} or {@code raw}
     */
    public Hydration hydrate(
            QmpClient qmp, String sourceNode, Path image, String format, String targetNode, Progress progress) {
        long t0 = System.nanoTime();
        Mirror m = startMirror(qmp, sourceNode, image, format, targetNode);
        awaitReady(qmp, m, progress);
        long total = pivot(qmp, m);
        progress.update(total, total);
        Duration elapsed = Duration.ofNanos(System.nanoTime() - t0);
        log.info(
                "hydrated {} to {} ({} bytes in {}); the VM now runs on node {}",
                describe(),
                image,
                total,
                elapsed,
                targetNode);
        return new Hydration(image, format, targetNode, total, elapsed);
    }

    /** A running hydration mirror. */
    public record Mirror(String job, Path image, String format, String targetNode) {}

    /**
     * Creates {@code image} ({@code qcow2} or {@code raw}, the disk's size), opens it as {@code
     * targetNode} and starts {@code blockdev-mirror sync=full} from {@code sourceNode} to it (at
     * {@link Options#mirrorSpeed()} bytes/s, 0 for unlimited). The guest's writes go on; the mirror
     * copies them too.
     */
    public Mirror startMirror(QmpClient qmp, String sourceNode, Path image, String format, String targetNode) {
        bootReads.finish(); // the mirror reads the whole disk: not boot reads
        if (!format.equals("qcow2") && !format.equals("raw")) {
            throw new PermanentException("hydration format must be qcow2 or raw, not '" + format + "'");
        }
        if (Files.exists(image)) {
            throw new PermanentException("the hydration target " + image + " already exists; choose a new file");
        }
        Path abs = image.toAbsolutePath();
        run("qemu-img", "create", "-q", "-f", format, abs.toString(), Long.toString(export.size()));
        ObjectNode add = QmpClient.args().put("driver", format).put("node-name", targetNode);
        add.putObject("file").put("driver", "file").put("filename", abs.toString());
        qmp.execute("blockdev-add", add);
        String job = "tm-hydrate-" + targetNode;
        ObjectNode mirror = QmpClient.args()
                .put("job-id", job)
                .put("device", sourceNode)
                .put("target", targetNode)
                .put("sync", "full");
        if (options.mirrorSpeed() > 0) {
            mirror.put("speed", options.mirrorSpeed());
        }
        qmp.execute("blockdev-mirror", mirror);
        return new Mirror(job, abs, format, targetNode);
    }

    /**
     * Waits until the mirror has copied everything once and keeps the copy in step ({@code
     * ready}), reporting the bytes copied. Fails (and cancels the job on a timeout) if the mirror
     * ends or stalls; the VM then still runs on the overlay.
     */
    public void awaitReady(QmpClient qmp, Mirror m, Progress progress) {
        long deadline = System.nanoTime() + options.mirrorTimeout().toNanos();
        long copied = 0;
        while (true) {
            JsonNode j = findJob(qmp, m.job());
            if (j == null) {
                JsonNode done = qmp.awaitEvent(
                        "BLOCK_JOB_COMPLETED",
                        e -> m.job().equals(e.path("data").path("device").asText()),
                        POLL);
                throw new PermanentException("the hydration mirror of " + describe() + " ended before it was ready: "
                        + done.path("data").path("error").asText("no error reported")
                        + "; the VM still runs on the overlay " + overlay);
            }
            copied = j.path("offset").asLong();
            progress.update(copied, j.path("len").asLong());
            if (j.path("ready").asBoolean(false)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                qmp.execute("job-cancel", QmpClient.args().put("id", m.job()));
                throw new RetriableException("the hydration mirror of " + describe() + " was not ready within "
                        + options.mirrorTimeout() + " (" + copied + " bytes copied); it was cancelled and the VM"
                        + " still runs on the overlay " + overlay + ". Retry, or check the target's speed");
            }
            LockSupport.parkNanos(POLL.toNanos());
        }
    }

    /**
     * Completes a ready mirror ({@code job-complete}): QEMU copies what is still dirty and switches
     * the device to the local image atomically, without pausing the guest. Returns the bytes the
     * job copied.
     */
    public long pivot(QmpClient qmp, Mirror m) {
        qmp.execute("job-complete", QmpClient.args().put("id", m.job()));
        JsonNode completed = qmp.awaitEvent(
                "BLOCK_JOB_COMPLETED",
                e -> m.job().equals(e.path("data").path("device").asText()),
                Duration.ofMinutes(10));
        JsonNode data = completed.path("data");
        if (data.has("error")) {
            throw new PermanentException("the hydration mirror of " + describe() + " failed at the pivot: "
                    + data.path("error").asText() + "; the VM still runs on the overlay " + overlay);
        }
        return data.path("len").asLong();
    }

    /**
     * Closes the overlay node in QEMU ({@code blockdev-del}), which also closes its NBD backing;
     * call it after the pivot, when no device uses the node any more.
     */
    public void detach(QmpClient qmp, String node) {
        qmp.execute("blockdev-del", QmpClient.args().put("node-name", node));
    }

    private static JsonNode findJob(QmpClient qmp, String job) {
        for (JsonNode j : qmp.execute("query-block-jobs")) {
            if (job.equals(j.path("device").asText())) {
                return j;
            }
        }
        return null;
    }

    private String describe() {
        return "disk '" + disk + "' of restore point " + point.id() + " of " + point.vm();
    }

    /**
     * Stores the boot-read trace (if the window has not ended yet; see {@link BootReads}), stops the
     * NBD server and the chunk fetchers; the overlay file stays.
     */
    @Override
    public void close() {
        try {
            bootReads.close();
        } finally {
            try {
                server.close();
            } finally {
                export.close();
            }
        }
    }

    @Override
    public String toString() {
        return "InstantRestore[" + describe() + " on " + server.uri() + "]";
    }

    static void run(String... cmd) {
        ExternalCommand.of(List.of(cmd))
                .timeout(Duration.ofSeconds(120))
                .mergeStderr()
                .ifMissing("install qemu-utils")
                .run();
    }
}
