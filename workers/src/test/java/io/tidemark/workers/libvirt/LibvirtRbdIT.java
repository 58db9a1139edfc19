package io.tidemark.workers.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.testkit.qemu.DiskModel;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.rbd.RbdChangeTracker;
import io.tidemark.workers.rbd.RbdImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * libvirt-managed VMs with disks on Ceph RBD (ADR 18, addendum), on a real libvirtd, QEMU (TCG) and
 * the throwaway Ceph: libvirt refuses checkpoints on {@code rbd} disks, so each such disk's point in
 * time is an RBD snapshot taken at the capture's instant (the domain paused, with its qcow2 disk in
 * libvirt's job at the same instant), its bytes are read from that snapshot, and an incremental reads
 * only {@code rbd diff --from-snap parent}. Before this, every backup of an RBD disk through libvirt
 * was a full read.
 */
@ExtendWith(CephClusterExtension.class)
class LibvirtRbdIT {

    private static final long MIB = 1 << 20;
    private static final int CHUNK = RepositoryConfig.defaults().chunkSize();
    private static final String POOL = "lvrbd";
    private static final Pattern ALIAS =
            Pattern.compile("<target dev='([^']+)'[^>]*/>.*?<alias name='([^']+)'/>", Pattern.DOTALL);

    private static CephCluster ceph;
    private static Path daemonDir;
    private static Libvirtd libvirtd;

    @TempDir
    Path dir;

    private final Map<String, DiskModel> models = new LinkedHashMap<>();
    private final Map<String, RbdImage> images = new LinkedHashMap<>();
    private int pattern = 1;

    @BeforeAll
    static void start(CephCluster shared) throws IOException {
        ceph = shared;
        ceph.createPool(POOL);
        cli("rbd", "pool", "init", POOL);
        daemonDir = Files.createTempDirectory("tm-lvr");
        libvirtd = Libvirtd.start(daemonDir);
    }

    @AfterAll
    static void stop() {
        if (libvirtd != null) {
            libvirtd.close();
        }
    }

    @Test
    void aVmWithAQcow2AndTwoRbdDisksIsIncrementalOnEveryDiskAcrossEngineAndQemuRestartsAndRestoresEachPoint()
            throws IOException {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults());
        RbdChangeTracker rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
        try (LibvirtDomain d = libvirtd.startDomain("lvr-mixed", 16 * MIB)) {
            RbdImage sda = attachRbd(d, "sda", "mixed-a", 32 * MIB);
            RbdImage sdb = attachRbd(d, "sdb", "mixed-b", 16 * MIB);
            d.write("vda", 0, (int) MIB, 0x11);
            writeChunks(d.name(), "sda", 0, 3, 100);
            writeChunks(d.name(), "sdb", 1, 60);
            SnapshotJob job = job(d);

            Manifest first;
            Map<String, String> at1 = checksums(d);
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                first = worker.backup("j1", job);
            }
            assertThat(first.disk("sda").orElseThrow().fullReason())
                    .map(FullReason::kind)
                    .contains(FullReason.Kind.FIRST_BACKUP);
            String cp1 = first.disk("sda").orElseThrow().checkpoint();
            assertThat(rbd.snapshots(sda)).containsExactly(cp1);
            assertThat(rbd.snapshots(sdb)).containsExactly(cp1);
            assertThat(checkpoints(d.name())).containsExactly(cp1); // libvirt's, for vda only

            // the engine restarts (a new adapter and worker): the chain goes on from the manifest's snapshot
            d.write("vda", 5 * MIB, 4096, 0x22);
            writeChunks(d.name(), "sda", 7);
            writeChunks(d.name(), "sdb", 2);
            Map<String, String> at2 = checksums(d);
            Manifest second;
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo, new CaptureHooks() {
                        @Override
                        public void onCaptured(String vm, Instant capturedAt) {
                            // after the instant, before the disks are read, over a changed chunk: must not
                            // be in this point (read from the live image, the restored sda would hold
                            // it), but in the next
                            writeChunks(d.name(), "sda", 7);
                        }
                    })) {
                second = worker.backup("j2", job);
            }
            assertThat(second.incremental()).isTrue();
            for (String rbdDisk : List.of("sda", "sdb")) {
                DiskEntry e = second.disk(rbdDisk).orElseThrow();
                // on main: full (no-persistent-bitmaps), the whole image read
                assertThat(e.fullReason()).as(rbdDisk).isEmpty();
                assertThat(e.bytesRead()).as(rbdDisk).isEqualTo(CHUNK);
            }
            assertThat(second.disk("vda").orElseThrow().fullReason()).isEmpty();
            String cp2 = second.disk("sda").orElseThrow().checkpoint();
            assertThat(rbd.snapshots(sda)).containsExactly(cp2);
            assertThat(rbd.snapshots(sdb)).containsExactly(cp2);

            // QEMU restarts: no bitmap could survive it on an rbd disk; the snapshots do
            d.destroy();
            d.start();
            aliases(d.name()); // refresh after the restart
            writeChunks(d.name(), "sdb", 10, 11);
            Map<String, String> at3 = checksums(d);
            Manifest third;
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                third = worker.backup("j3", job);
            }
            assertThat(third.disk("sda").orElseThrow().fullReason()).isEmpty();
            assertThat(third.disk("sda").orElseThrow().bytesRead()).isEqualTo(CHUNK); // chunk 7 again, written late
            assertThat(third.disk("sdb").orElseThrow().fullReason()).isEmpty();
            assertThat(third.disk("sdb").orElseThrow().bytesRead()).isEqualTo(2L * CHUNK);

            for (Map.Entry<Manifest, Map<String, String>> point :
                    Map.of(first, at1, second, at2, third, at3).entrySet()) {
                for (String disk : List.of("vda", "sda", "sdb")) {
                    assertThat(restoredSha(repo, point.getKey(), disk))
                            .as("%s of %s", disk, point.getKey().id())
                            .isEqualTo(point.getValue().get(disk));
                }
            }
            String cp3 = third.disk("sda").orElseThrow().checkpoint();
            assertThat(rbd.snapshots(sda)).containsExactly(cp3);
            assertThat(rbd.snapshots(sdb)).containsExactly(cp3);
            assertThat(checkpoints(d.name())).containsExactly(cp3);
        }
    }

    @Test
    void aKilledCaptureLeavesNothingForeverAndAVanishedParentSnapshotGivesAFullThatNamesIt() throws IOException {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults());
        RbdChangeTracker rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
        try (LibvirtDomain d = libvirtd.startDomain("lvr-killed", 16 * MIB)) {
            RbdImage sda = attachRbd(d, "sda", "killed-a", 16 * MIB);
            writeChunks(d.name(), "sda", 0, 5);
            SnapshotJob job = job(d);
            Manifest first;
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                first = worker.backup("j1", job);
            }
            String cp1 = first.disk("sda").orElseThrow().checkpoint();
            String owner = cp1.substring(0, cp1.indexOf('-', "tm-".length()) + 1);

            // a capture killed mid-way: its snapshot and its qemu-nbd stay until the next capture
            writeChunks(d.name(), "sda", 9);
            LibvirtHypervisor crashed = new LibvirtHypervisor(libvirtd.uri());
            Path work = Files.createDirectories(dir.resolve("crashed"));
            Capture abandoned = crashed.capture(
                    new CaptureRequest(d.name(), Optional.of(cp1), owner + "killed", work, job.consistencyOrDefault()));
            assertThat(abandoned.disks()).hasSize(2);
            assertThat(rbd.snapshots(sda)).containsExactlyInAnyOrder(cp1, owner + "killed");
            assertThat(ourQemuNbds()).isNotEmpty();
            crashed.close(); // the worker dies without close() or commit()
            rbd.createSnapshot(sda, "nightly"); // another tool's

            Manifest second;
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                second = worker.backup("j2", job);
            }
            DiskEntry inc = second.disk("sda").orElseThrow();
            assertThat(inc.fullReason()).isEmpty();
            assertThat(inc.bytesRead()).isEqualTo(CHUNK);
            assertThat(rbd.snapshots(sda)).containsExactlyInAnyOrder(inc.checkpoint(), "nightly");
            // the killed capture's server was stopped by the next capture; that one's own exits in the background
            await().atMost(Duration.ofSeconds(60)).until(() -> ourQemuNbds().isEmpty());
            assertThat(restoredSha(repo, second, "sda"))
                    .isEqualTo(models.get("sda").sha256());

            // a capture closed without commit removes its own snapshot; the parent stays the base
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    Capture c = hv.capture(new CaptureRequest(
                            d.name(),
                            Optional.of(inc.checkpoint()),
                            owner + "aborted",
                            work,
                            job.consistencyOrDefault()))) {
                assertThat(c.disks().get(1).changedRanges()).hasValue(List.of());
            }
            assertThat(rbd.snapshots(sda)).containsExactlyInAnyOrder(inc.checkpoint(), "nightly");

            rbd.deleteSnapshot(sda, inc.checkpoint()); // someone removes our base
            writeChunks(d.name(), "sda", 3);
            Manifest third;
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                third = worker.backup("j3", job);
            }
            DiskEntry full = third.disk("sda").orElseThrow();
            assertThat(full.fullReason()).hasValueSatisfying(r -> {
                assertThat(r.kind()).isEqualTo(FullReason.Kind.CHECKPOINT_MISSING);
                assertThat(r.detail()).contains("RBD snapshot " + sda.spec(inc.checkpoint()) + " is gone");
            });
            assertThat(restoredSha(repo, third, "sda"))
                    .isEqualTo(models.get("sda").sha256());
            assertThat(rbd.snapshots(sda)).containsExactlyInAnyOrder(full.checkpoint(), "nightly");
        }
    }

    @Test
    void aDomainWhoseOnlyDiskIsOnRbdIsCapturedWithoutLibvirtsJobAndIsIncremental() throws IOException {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults());
        RbdChangeTracker rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
        RbdImage image = createImage("only-a", 16 * MIB);
        Path def = dir.resolve("lvr-only.xml");
        Files.writeString(
                def,
                "<domain type='qemu'><name>lvr-only</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                        + "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
                        + "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
                        + "<controller type='scsi' index='0' model='virtio-scsi'/>" + rbdDiskXml(image, "sda")
                        + "<memballoon model='none'/></devices></domain>");
        libvirtd.virsh("define", def.toString());
        libvirtd.virsh("start", "lvr-only");
        try {
            models.put("sda", new DiskModel(16 * MIB));
            writeChunks("lvr-only", "sda", 0, 40);
            SnapshotJob job =
                    new SnapshotJob("lvr-only", "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now());
            Manifest first;
            Manifest second;
            String at1 = models.get("sda").sha256();
            try (LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri());
                    BackupWorker worker = worker(hv, repo)) {
                first = worker.backup("j1", job);
                writeChunks("lvr-only", "sda", 41);
                second = worker.backup("j2", job);
            }
            DiskEntry inc = second.disk("sda").orElseThrow();
            // on main: full (no-persistent-bitmaps), 16 MiB read
            assertThat(inc.fullReason()).isEmpty();
            assertThat(inc.bytesRead()).isEqualTo(CHUNK);
            assertThat(restoredSha(repo, first, "sda")).isEqualTo(at1);
            assertThat(restoredSha(repo, second, "sda"))
                    .isEqualTo(models.get("sda").sha256());
            assertThat(rbd.snapshots(image)).containsExactly(inc.checkpoint());
            assertThat(checkpoints("lvr-only"))
                    .as("no libvirt checkpoint: no job ran")
                    .isEmpty();
            assertThat(libvirtd.virsh("domstate", "lvr-only").strip()).isEqualTo("running");
        } finally {
            libvirtd.virsh("destroy", "lvr-only");
            libvirtd.virsh("undefine", "lvr-only", "--checkpoints-metadata");
        }
    }

    private static RbdImage createImage(String name, long size) {
        RbdImage image = RbdImage.of(POOL, name);
        cli("rbd", "create", "--size", size / MIB + "M", "--object-size", Integer.toString(CHUNK), image.spec());
        return image;
    }

    private static String rbdDiskXml(RbdImage image, String target) {
        Matcher mon = Pattern.compile("(\\d+\\.\\d+\\.\\d+\\.\\d+):(\\d+)").matcher(ceph.monHost());
        assertThat(mon.find()).as("a monitor address in %s", ceph.monHost()).isTrue();
        return "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>"
                + "<source protocol='rbd' name='" + image.spec() + "'><host name='" + mon.group(1) + "' port='"
                + mon.group(2) + "'/><config file='" + ceph.confFile() + "'/></source><target dev='" + target
                + "' bus='scsi'/></disk>";
    }

    /** Creates an image (objects of one chunk) and attaches it to the domain, live and persistently. */
    private RbdImage attachRbd(LibvirtDomain d, String target, String name, long size) throws IOException {
        RbdImage image = createImage(name, size);
        Path xml = dir.resolve(target + ".xml");
        Files.writeString(xml, rbdDiskXml(image, target));
        libvirtd.virsh("attach-device", d.name(), xml.toString(), "--live", "--config");
        models.put(target, new DiskModel(size));
        images.put(target, image);
        return image;
    }

    private final Map<String, String> aliases = new LinkedHashMap<>();

    private void aliases(String vm) {
        aliases.clear();
        Matcher m = ALIAS.matcher(libvirtd.virsh("dumpxml", vm));
        while (m.find()) {
            aliases.put(m.group(1), m.group(2));
        }
    }

    /** Writes whole chunks through the guest's SCSI device of an RBD disk (QEMU's rbd driver). */
    private void writeChunks(String vm, String disk, int... chunks) {
        Path log = libvirtd.dir().resolve("log").resolve("qemu").resolve(vm + ".log");
        if (!aliases.containsKey(disk)) {
            aliases(vm);
        }
        for (int c : chunks) {
            long offset = (long) c * CHUNK;
            int p = pattern++ & 0xff;
            long mark = size(log);
            String expect = "wrote " + CHUNK + "/" + CHUNK + " bytes at offset " + offset;
            String reply = libvirtd.virsh(
                    "qemu-monitor-command",
                    vm,
                    "--hmp",
                    "qemu-io -d " + aliases.get(disk) + " \"write -P " + p + " " + offset + " " + CHUNK + "\"");
            assertThat(reply).isBlank();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!logFrom(log, mark).contains(expect)) {
                assertThat(System.nanoTime())
                        .as("qemu-io on %s printed '%s'", disk, expect)
                        .isLessThan(deadline);
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
            }
            models.get(disk).write(offset, CHUNK, p);
        }
    }

    private Map<String, String> checksums(LibvirtDomain d) {
        Map<String, String> out = new LinkedHashMap<>();
        out.put("vda", d.model("vda").sha256());
        models.forEach((disk, m) -> out.put(disk, m.sha256()));
        return out;
    }

    private SnapshotJob job(LibvirtDomain d) {
        return new SnapshotJob(d.name(), "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now());
    }

    private BackupWorker worker(LibvirtHypervisor hv, Repository repo) {
        return worker(hv, repo, CaptureHooks.NONE);
    }

    private BackupWorker worker(LibvirtHypervisor hv, Repository repo, CaptureHooks hooks) {
        return new BackupWorker(
                "hv1",
                hv,
                repo,
                new RecordingEventBus(),
                Clock.systemUTC(),
                dir.resolve("work"),
                hooks,
                NbdBlockSource::open);
    }

    private String restoredSha(Repository repo, Manifest m, String disk) {
        Path out = dir.resolve(m.id() + "-" + disk + ".raw");
        String sha = new Restorer(repo, 2)
                .restoreDisk(m, disk, out, Restorer.Progress.NONE)
                .sha256();
        try {
            Files.delete(out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return sha;
    }

    private List<String> checkpoints(String domain) {
        return Arrays.stream(libvirtd.virsh("checkpoint-list", domain, "--name").split("\n"))
                .map(String::strip)
                .filter(s -> !s.isEmpty())
                .sorted()
                .toList();
    }

    /** The qemu-nbd servers of RBD snapshots of this process's captures. */
    private static List<Long> ourQemuNbds() {
        return ProcessHandle.allProcesses()
                .filter(p ->
                        p.info().command().map(c -> c.endsWith("/qemu-nbd")).orElse(false))
                .filter(p -> Arrays.stream(p.info().arguments().orElse(new String[0]))
                        .anyMatch(a -> a.startsWith("--socket=") && a.contains("-rbd-")))
                .map(ProcessHandle::pid)
                .toList();
    }

    private static long size(Path file) {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String logFrom(Path file, long offset) {
        try {
            byte[] all = Files.readAllBytes(file);
            return new String(
                    all,
                    (int) Math.min(offset, all.length),
                    (int) Math.max(0, all.length - offset),
                    StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void cli(String... args) {
        ExternalCommand.of(List.of(args))
                .env("CEPH_CONF", ceph.confFile().toString())
                .run();
    }
}
