package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import io.tidemark.workers.instant.BootReads;
import io.tidemark.workers.instant.InstantRestore;
import io.tidemark.workers.instant.RestorePointExport;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "restore-instant",
        mixinStandardHelpOptions = true,
        exitCodeOnInvalidInput = Main.EXIT_INVALID,
        description = {
            "Start a VM from a restore point at once, its disk served over NBD from the repository.",
            "Instant restore: serve one disk of a restore point over NBD straight from its repository, with a",
            "local qcow2 overlay on top, so a VM starts from it at once (the guest's writes stay in the overlay;",
            "the repository is never written). With --qmp the overlay is opened in a running QEMU (and, with",
            "--device, attached to a new device); with --hydrate-to the whole disk is then copied to a local",
            "image by a live block mirror and the VM pivots onto it without stopping. After the pivot the NBD",
            "server stops and the command exits. Without --hydrate-to it serves until interrupted (Ctrl-C):",
            "stop the VM first, it reads through the server. A PCI --device goes on pci.0 (i440fx) or, on q35, into",
            "the first free pcie-root-port (start the VM with one: -device pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9).",
            "Runbook: docs/runbooks/instant-restore.md",
            "",
            "Example:  tidemark restore-instant --from /srv/tidemark --vm web-1 --disk sd0 --dir /run/tm-ir \\",
            "            --qmp /run/web-1-dr.qmp --device virtio-blk-pci --hydrate-to /srv/vm/web-1-sd0.qcow2",
            "          tidemark restore-instant --from /srv/tidemark --vm web-1 --at '2h ago' --dir /run/tm-ir",
            "          tidemark restore-instant --from /srv/tidemark --vm shop-db \\",
            "            --tag pre-deploy:shop@3f9a1c2 --dir /run/tm-ir",
            "",
            "Choose the point with at most one of --point, --at, --tag (default: the newest), as for `tidemark restore`.",
        })
final class InstantRestoreCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Mixin
    ColdWaitOption cold;

    @Option(
            names = "--from",
            required = true,
            paramLabel = "SOURCE",
            description = "repository: local, a target of --config by name, DIR or s3://BUCKET/PREFIX?endpoint=…")
    String from;

    @Option(names = "--vm", required = true, description = "the VM whose restore point to serve")
    String vm;

    @Mixin
    PointOptions points;

    @Option(names = "--disk", description = "the disk to serve (default: the point's only disk)")
    String disk;

    @Option(
            names = "--dir",
            required = true,
            description = "directory for the NBD socket <disk>.nbd and <disk>-overlay.qcow2 (keep it short)")
    Path dir;

    @Option(names = "--qmp", description = "QMP socket of a running QEMU to hand the disk to")
    Path qmp;

    @Option(names = "--node", description = "block node name of the overlay in QEMU (default: tm-<vm>-<disk>)")
    String node;

    @Option(
            names = "--device",
            description = "with --qmp: also attach a device, DRIVER[,KEY=VALUE…] (for example virtio-blk-pci or"
                    + " scsi-hd,bus=scsi0.0); drive= and id= (default <node>-dev) are filled in")
    String device;

    @Option(
            names = "--bus",
            description = "with --device: the bus to plug it into (default: for a PCI device on q35 the first free"
                    + " pcie-root-port, on i440fx pci.0; otherwise QEMU's choice)")
    String bus;

    @Option(names = "--hydrate-to", description = "with --qmp: copy the disk to this new local image and pivot")
    Path hydrateTo;

    @Option(names = "--format", defaultValue = "qcow2", description = "hydrated image format: qcow2 (default) or raw")
    String format;

    @Option(
            names = "--speed",
            defaultValue = "0",
            description = "hydration speed limit in bytes/s (default 0: unlimited)")
    long speed;

    @Option(names = "--cache-mib", defaultValue = "256", description = "chunk cache size in MiB (default 256)")
    long cacheMib;

    @Option(
            names = "--boot-reads",
            defaultValue = "prefetch",
            description = "prefetch (default): fetch the chunks the VM's last instant restore read while it booted,"
                    + " in the background, and record this boot's reads for next time; record: record only; off:"
                    + " neither (the repository is then only read, on demand)")
    String bootReadsMode;

    @Option(names = "--json", description = "print a JSON summary instead of text; no progress bar")
    boolean json;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException {
        Optional<String> invalid = checkOptions();
        if (invalid.isPresent()) {
            return invalid(invalid.get());
        }
        RestorePointSelector selector = new RestorePointSelector(clock);
        RestorePointSelector.Criterion criterion;
        try {
            criterion = points.criterion(selector);
        } catch (IllegalArgumentException e) {
            return invalid(e.getMessage());
        }
        io.tidemark.engine.EngineConfig c = engine.engineConfig();
        try (ObjectTarget target = engine.source(c, from)) {
            Repository repo = Repository.open(target, engine.passphrases(c));
            Manifest m = selector.select(repo, vm, criterion);
            String diskName = disk != null ? disk : onlyDisk(m);
            cold.prepare(target, repo, List.of(m), ColdWaitOption.disk(diskName), json ? null : System.err);
            String nodeName = node != null ? node : "tm-" + vm + "-" + diskName;
            long t0 = System.nanoTime();
            ObjectNode summary = Json.mapper().createObjectNode();
            try (InstantRestore ir = InstantRestore.start(repo, m, diskName, dir, options())) {
                printServing(ir, m, criterion.describe(), diskName, (System.nanoTime() - t0) / 1e9, summary);
                if (qmp == null) {
                    printStartHint(ir, nodeName);
                    serveUntilInterrupted(ir, summary);
                    return 0;
                }
                try (QmpClient client = QmpClient.connect(qmp)) {
                    attach(ir, client, nodeName, t0, summary);
                    if (hydrateTo == null) {
                        serveUntilInterrupted(ir, summary);
                        return 0;
                    }
                    hydrate(ir, client, diskName, nodeName, summary);
                }
                summary.put("bytesServed", ir.server().bytesServed());
                summary.put("bytesFetched", ir.export().bytesFetched());
                bootReadsSummary(ir, summary);
            }
            summary.put("seconds", (System.nanoTime() - t0) / 1e9);
            printHydrated(diskName, summary);
        }
        return 0;
    }

    /** What the command serves, and how long it took until the NBD server answered. */
    private void printServing(
            InstantRestore ir, Manifest m, String selectedBy, String diskName, double servingSecs, ObjectNode summary) {
        summary.put("vm", m.vm());
        summary.put("restorePoint", m.id());
        summary.put("capturedAt", m.capturedAt().toString());
        RestorePointSelector.tag(m).ifPresent(t -> summary.put("tag", t));
        summary.put("selectedBy", selectedBy);
        summary.put("disk", diskName);
        summary.put("sizeBytes", ir.export().size());
        summary.put("nbd", ir.nbdUri());
        summary.put("overlay", ir.overlay().toString());
        summary.put("secondsToServe", servingSecs);
        if (!json) {
            System.out.printf(
                    "serving %s of %s (%s, captured %s, %s) on %s in %.2f s%noverlay: %s%n",
                    diskName,
                    m.vm(),
                    m.id(),
                    m.capturedAt(),
                    Human.bytes(ir.export().size()),
                    ir.nbdUri(),
                    servingSecs,
                    ir.overlay());
        }
    }

    /** What the boot-read prefetch did (so far). */
    private static void bootReadsSummary(InstantRestore ir, ObjectNode summary) {
        ObjectNode b = summary.putObject("bootReads");
        b.put("mode", ir.bootReads().options().mode().name().toLowerCase(java.util.Locale.ROOT));
        ir.bootReads().loaded().ifPresent(l -> b.put("traceChunks", l.chunks()).put("tracedOn", l.restorePoint()));
        b.put("chunksPrefetched", ir.export().tracePrefetched());
        b.put("prefetchFailed", ir.export().tracePrefetchFailed());
        b.put("readsServedByPrefetch", ir.export().tracePrefetchHits());
        b.put("chunksFetchedOnDemand", ir.export().demandFetches());
    }

    /** Without --qmp: the QEMU arguments that open the served disk. */
    private void printStartHint(InstantRestore ir, String nodeName) {
        if (!json) {
            System.out.println("start QEMU with:  " + String.join(" ", ir.blockdevArgs(nodeName))
                    + " -device virtio-blk-pci,drive=" + nodeName);
        }
    }

    private void serveUntilInterrupted(InstantRestore ir, ObjectNode summary) throws IOException {
        if (!json) {
            System.out.println("serving until interrupted (Ctrl-C); stop the VM first");
        } else {
            System.out.println(Json.mapper().writeValueAsString(summary));
        }
        System.out.flush();
        awaitInterrupt(ir);
    }

    /** Opens the overlay in the running QEMU (and adds the device when asked). */
    private void attach(InstantRestore ir, QmpClient client, String nodeName, long t0, ObjectNode summary) {
        // the bus first: without a free one nothing is added to the VM
        ObjectNode dev = device != null ? deviceArgs(client, nodeName) : null;
        ir.attach(client, nodeName);
        summary.put("node", nodeName);
        if (dev != null) {
            try {
                client.execute("device_add", dev);
            } catch (RuntimeException e) {
                ir.detach(client, nodeName);
                throw e;
            }
            summary.put("device", dev.get("id").asText());
            if (dev.has("bus")) {
                summary.put("bus", dev.get("bus").asText());
            }
        }
        summary.put("secondsToAttach", (System.nanoTime() - t0) / 1e9);
        if (!json) {
            System.out.printf(
                    "attached as node %s%s in %.2f s%n",
                    nodeName,
                    device != null
                            ? " to device " + summary.get("device").asText()
                                    + (summary.has("bus")
                                            ? " on bus " + summary.get("bus").asText()
                                            : "")
                            : "",
                    summary.get("secondsToAttach").asDouble());
        }
    }

    /** Copies the disk to --hydrate-to by a live mirror, pivots the VM onto it and stops serving. */
    private void hydrate(InstantRestore ir, QmpClient client, String diskName, String nodeName, ObjectNode summary) {
        ProgressBar bar = new ProgressBar(System.err, "hydrate " + diskName, !json && System.console() != null);
        InstantRestore.Hydration h = ir.hydrate(client, nodeName, hydrateTo, format, nodeName + "-local", bar::update);
        ir.detach(client, nodeName);
        summary.put("hydratedTo", h.image().toString());
        summary.put("format", h.format());
        summary.put("activeNode", h.node());
        summary.put("bytesHydrated", h.bytesCopied());
        summary.put("secondsToHydrate", h.elapsed().toMillis() / 1e3);
    }

    private void printHydrated(String diskName, ObjectNode summary) throws IOException {
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(summary));
            return;
        }
        System.out.printf(
                "hydrated %s to %s (%s copied in %.1f s); the VM runs on node %s; NBD server stopped%n",
                diskName,
                hydrateTo,
                Human.bytes(summary.get("bytesHydrated").asLong()),
                summary.get("secondsToHydrate").asDouble(),
                summary.get("activeNode").asText());
    }

    private InstantRestore.Options options() {
        return new InstantRestore.Options(
                new RestorePointExport.Options(cacheMib << 20, 8, 8),
                16,
                Duration.ofHours(12),
                speed,
                BootReads.Options.defaults().withMode(bootReadsMode()));
    }

    private BootReads.Mode bootReadsMode() {
        return switch (bootReadsMode) {
            case "prefetch" -> BootReads.Mode.PREFETCH;
            case "record" -> BootReads.Mode.RECORD;
            case "off" -> BootReads.Mode.OFF;
            default -> throw new IllegalStateException("checked in checkOptions: " + bootReadsMode);
        };
    }

    /** Why the options do not go together, if they do not. */
    private Optional<String> checkOptions() {
        if (hydrateTo != null && qmp == null) {
            return Optional.of(
                    "--hydrate-to needs --qmp: hydration is a block mirror inside the QEMU that runs the VM");
        }
        if (device != null && qmp == null) {
            return Optional.of("--device needs --qmp: the device is added to a running QEMU");
        }
        if (!java.util.Set.of("prefetch", "record", "off").contains(bootReadsMode)) {
            return Optional.of("--boot-reads must be prefetch, record or off, not '" + bootReadsMode + "'");
        }
        if (bus != null && device == null) {
            return Optional.of("--bus needs --device: it says where the device is plugged in");
        }
        return Optional.empty();
    }

    private int invalid(String message) {
        throw new CommandFailure(Main.EXIT_INVALID, message);
    }

    private static String onlyDisk(Manifest m) {
        if (m.disks().size() != 1) {
            throw new PermanentException("restore point " + m.id() + " of " + m.vm() + " has "
                    + m.disks().size() + " disks "
                    + m.disks().stream().map(DiskEntry::name).toList()
                    + "; choose one with --disk");
        }
        return m.disks().get(0).name();
    }

    /**
     * The {@code device_add} arguments: --device's KEY=VALUEs, drive and id, and the bus: bus= in
     * --device, else --bus, else for a PCI device the one {@link InstantRestore#pciHotplugBus} finds.
     */
    private ObjectNode deviceArgs(QmpClient client, String nodeName) {
        String[] parts = device.split(",");
        ObjectNode args = QmpClient.args().put("driver", parts[0].trim());
        for (int i = 1; i < parts.length; i++) {
            String[] kv = parts[i].split("=", 2);
            if (kv.length != 2) {
                throw new PermanentException("--device '" + device + "': '" + parts[i] + "' is not KEY=VALUE");
            }
            args.put(kv[0].trim(), kv[1].trim());
        }
        args.put("drive", nodeName);
        if (!args.has("id")) {
            args.put("id", nodeName + "-dev");
        }
        boolean pci = isPci(parts[0].trim());
        if (!args.has("bus")) {
            if (bus != null) {
                args.put("bus", bus);
            } else if (pci) {
                InstantRestore.pciHotplugBus(client).ifPresent(b -> args.put("bus", b));
                return args;
            }
        }
        if (pci && args.has("bus")) {
            InstantRestore.checkPciBus(client, args.get("bus").asText());
        }
        return args;
    }

    /** Whether a device driver is a PCI(e) function, which needs a hot-pluggable PCI bus. */
    static boolean isPci(String driver) {
        return driver.endsWith("-pci") || driver.equals("nvme") || driver.startsWith("vfio-pci");
    }

    /**
     * Serves until the process is stopped (Ctrl-C, SIGTERM: the shutdown hook stops the server) or
     * the calling thread is interrupted.
     */
    private static void awaitInterrupt(InstantRestore ir) {
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(
                () -> {
                    ir.close();
                    stopped.countDown();
                },
                "restore-instant-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook is running
            }
        }
    }
}
