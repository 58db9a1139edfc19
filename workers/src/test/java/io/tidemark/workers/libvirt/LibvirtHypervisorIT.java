package io.tidemark.workers.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.contract.HypervisorContract;
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.testkit.qemu.DiskModel;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.NbdExports;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link LibvirtHypervisor} against a real libvirtd 9.0 from Debian's packages (one isolated daemon
 * for the class, {@link Libvirtd}) and TCG domains with two qcow2 v3 disks: the {@link
 * HypervisorContract}, what is particular to libvirt (a killed QEMU, a crashed worker's job), and
 * the engine's {@link BackupWorker} producing restore points that restore bit-identically.
 */
class LibvirtHypervisorIT extends HypervisorContract {

    private static Path daemonDir;
    private static Libvirtd libvirtd;

    @BeforeAll
    static void startDaemon() throws IOException {
        daemonDir = Files.createTempDirectory("tm-lv");
        libvirtd = Libvirtd.start(daemonDir);
    }

    @AfterAll
    static void stopDaemon() {
        if (libvirtd != null) {
            libvirtd.close();
        }
    }

    @Override
    protected Hypervisor newHypervisor() {
        return new LibvirtHypervisor(libvirtd.uri());
    }

    @Override
    protected GuestVm startVm(String name, long... diskSizes) {
        return libvirtd.startDomain(name, diskSizes);
    }

    @Override
    protected byte[] read(DiskExport export) {
        return NbdExports.readAll(export);
    }

    @Override
    protected List<long[]> dirtyExtents(DiskExport export) {
        return NbdExports.dirtyExtents(export);
    }

    /** A URI whose daemon socket does not exist. */
    @Override
    protected Unreachable unreachable() {
        String uri = "qemu:///system?socket=" + dir.resolve("no-daemon.sock");
        return new Unreachable(new LibvirtHypervisor(uri), "dom", uri);
    }

    private List<String> checkpoints(String domain) {
        return Arrays.stream(libvirtd.virsh("checkpoint-list", domain, "--name").split("\n"))
                .map(String::strip)
                .filter(s -> !s.isEmpty())
                .sorted()
                .toList();
    }

    @Test
    void checkpointsAreRotatedOnCommitAndKeptWithoutCommit() throws IOException {
        try (LibvirtDomain d = libvirtd.startDomain("lv-rotate", 16 * MIB, 16 * MIB)) {
            baseline(d.name());
            assertThat(checkpoints(d.name())).containsExactly("tm-1");
            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-2"))) {
                assertThat(c.disks())
                        .extracting(e -> e.dirtyBitmapContext().orElseThrow())
                        .containsExactly("qemu:dirty-bitmap:backup-vda", "qemu:dirty-bitmap:backup-sda");
                assertThat(c.disks())
                        .extracting(DiskExport::nbdSocket)
                        .containsOnly(c.disks().get(0).nbdSocket());
                assertThat(checkpoints(d.name())).containsExactly("tm-1", "tm-2");
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-1");
            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-3"))) {
                c.commit();
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-3");
            assertThat(Files.list(dir.resolve("w2")))
                    .as("libvirt removed scratch files and socket")
                    .isEmpty();
        }
    }

    @Test
    void afterQemuWasKilledTheCheckpointIsInconsistentAndTheNextCaptureIsFull() throws IOException {
        try (LibvirtDomain d = libvirtd.startDomain("lv-crash", 16 * MIB, 16 * MIB)) {
            d.write("vda", 0, (int) MIB, 0x01);
            baseline(d.name());
            d.destroy(); // a clean stop stores tm-1 in the images; QEMU marks it in use when it opens them
            d.start();
            d.write("sda", 5 * MIB, (int) MIB, 0x02);
            d.kill();
            d.start();
            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-2"))) {
                assertThat(c.disks()).allSatisfy(e -> {
                    assertThat(e.incremental()).isFalse();
                    assertThat(e.fullReason())
                            .hasValueSatisfying(r -> assertThat(r.detail()).contains("tm-1", "inconsistent", e.disk()));
                });
                assertThat(DiskModel.sha256(NbdExports.readAll(c.disks().get(1))))
                        .isEqualTo(d.model("sda").sha256());
                c.commit();
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-2");
            d.write("vda", 8 * MIB, 1, 0x03);
            try (Capture c = hypervisor.capture(request(d.name(), "tm-2", "tm-3"))) {
                assertThat(c.disks()).allMatch(DiskExport::incremental);
                assertThat(NbdExports.dirtyRanges(c.disks().get(0))).containsExactly(8 * MIB + "+65536");
                assertThat(NbdExports.dirtyRanges(c.disks().get(1))).isEmpty();
            }
        }
    }

    @Test
    void rawAndQcow2V2DisksGetNoCheckpointAndFullCapturesThatSayWhy() throws Exception {
        try (LibvirtDomain d = libvirtd.startDomain("lv-legacy", 16 * MIB)) {
            Path raw = libvirtd.dir().resolve("disks").resolve("lv-legacy-raw.img");
            Path v2 = libvirtd.dir().resolve("disks").resolve("lv-legacy-v2.qcow2");
            run("qemu-img", "create", "-q", "-f", "raw", raw.toString(), "8M");
            run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2.toString(), "4M");
            libvirtd.virsh(
                    "attach-disk",
                    d.name(),
                    raw.toString(),
                    "sda",
                    "--driver",
                    "qemu",
                    "--subdriver",
                    "raw",
                    "--targetbus",
                    "scsi",
                    "--live");
            libvirtd.virsh(
                    "attach-disk",
                    d.name(),
                    v2.toString(),
                    "sdb",
                    "--driver",
                    "qemu",
                    "--subdriver",
                    "qcow2",
                    "--targetbus",
                    "scsi",
                    "--live");

            try (Capture c = hypervisor.capture(request(d.name(), null, "tm-1"))) {
                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly("vda", "sda", "sdb");
                assertThat(c.disks()).extracting(DiskExport::sizeBytes).containsExactly(16 * MIB, 8 * MIB, 4 * MIB);
                assertThat(c.disks().get(0).fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("first"));
                assertThat(c.disks().get(1).fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("raw", "persistent bitmaps"));
                assertThat(c.disks().get(2).fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("qcow2 v2", "compat=1.1"));
                assertThat(NbdExports.readAll(c.disks().get(2))).containsOnly(0);
                c.commit();
            }
            d.write("vda", 3 * MIB, 4096, 0x44);
            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-2"))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertThat(NbdExports.dirtyRanges(c.disks().get(0))).containsExactly(3 * MIB + "+65536");
                assertThat(c.disks().get(1).fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("raw"));
                // tried again at every capture, so converting the disk (with the domain stopped) is noticed
                assertThat(c.disks().get(2).fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("sdb", "qcow2 v2", "compat=1.1"));
                c.commit();
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-2");
        }
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(String.join(" ", cmd) + ": " + out).isZero();
    }

    @Test
    void whileLibvirtdIsDownCapturesAreRetriableAndAfterItsRestartTheConnectionAndCheckpointsAreBack()
            throws IOException {
        try (LibvirtDomain d = libvirtd.startDomain("lv-restart", 16 * MIB)) {
            baseline(d.name());
            d.write("vda", 2 * MIB, 4096, 0x91);
            libvirtd.killDaemon();
            try {
                assertThatThrownBy(() -> hypervisor.capture(request(d.name(), "tm-1", "tm-2")))
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining(libvirtd.uri());
                assertThatThrownBy(() -> hypervisor.list()).isInstanceOf(RetriableException.class);
            } finally {
                libvirtd.restart();
            }
            d.write("vda", 5 * MIB, 4096, 0x92);
            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-2"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isTrue();
                assertThat(NbdExports.dirtyRanges(e)).containsExactly(2 * MIB + "+65536", 5 * MIB + "+65536");
                assertThat(DiskModel.sha256(NbdExports.readAll(e)))
                        .isEqualTo(d.model("vda").sha256());
                c.commit();
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-2");
        }
    }

    @Test
    void aJobLeftByACrashedWorkerIsAbortedAndNoChangeIsLost() throws IOException {
        try (LibvirtDomain d = libvirtd.startDomain("lv-leftover", 16 * MIB)) {
            baseline(d.name());
            d.write("vda", MIB, 4096, 0x81);
            LibvirtHypervisor crashed = new LibvirtHypervisor(libvirtd.uri());
            Capture abandoned = crashed.capture(request(d.name(), "tm-1", "tm-2"));
            assertThat(abandoned.disks()).hasSize(1);
            crashed.close(); // the worker dies: no close(), no commit(); the job stays in libvirt
            d.write("vda", 4 * MIB, 4096, 0x82);

            try (Capture c = hypervisor.capture(request(d.name(), "tm-1", "tm-3"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isTrue();
                assertThat(NbdExports.dirtyRanges(e)).containsExactly(MIB + "+65536", 4 * MIB + "+65536");
                assertThat(DiskModel.sha256(NbdExports.readAll(e)))
                        .isEqualTo(d.model("vda").sha256());
                c.commit();
            }
            assertThat(checkpoints(d.name())).containsExactly("tm-3");
        }
    }

    /**
     * libvirtd waits for a stopped QEMU for ever: the adapter gives up after its timeout, closes
     * what the call opens once QEMU runs again, and the domain is capturable again, incrementally.
     */
    @Test
    void aStoppedQemuFailsTheCaptureAndItsCloseWithinTheBoundAndTheDomainIsCapturableAfterCont() throws Exception {
        Duration timeout = Duration.ofSeconds(5);
        Duration bound = timeout.plusSeconds(10);
        try (LibvirtDomain d = libvirtd.startDomain("lv-stopped", 16 * MIB);
                LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri(), Clock.systemUTC(), "tm-", timeout)) {
            try (Capture c = hv.capture(request(d.name(), null, "tm-1"))) {
                c.commit();
            }
            assertThat(hv.list()).extracting(VmInfo::name).contains(d.name());
            long pid = Long.parseLong(Files.readString(libvirtd.dir().resolve("run/qemu/" + d.name() + ".pid"))
                    .strip());
            signal("STOP", pid);
            try {
                long t0 = System.nanoTime();
                assertThatThrownBy(() -> hv.capture(request(d.name(), "tm-1", "tm-2")))
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining(d.name())
                        .hasMessageContaining("stopped");
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(bound);
                // the listing (inventory) answers in time and still knows the domain
                long t1 = System.nanoTime();
                assertThat(hv.list()).extracting(VmInfo::name).contains(d.name());
                assertThat(Duration.ofNanos(System.nanoTime() - t1)).isLessThan(bound);
            } finally {
                signal("CONT", pid);
            }
            // the late capture is closed in the background; then the domain is free again
            d.write("vda", MIB, 4096, 0x5a);
            await().atMost(Duration.ofSeconds(60))
                    .ignoreException(RetriableException.class)
                    .untilAsserted(() -> {
                        try (Capture c = hv.capture(request(d.name(), "tm-1", "tm-3"))) {
                            assertThat(c.disks().get(0).incremental()).isTrue();
                            assertThat(NbdExports.dirtyRanges(c.disks().get(0))).containsExactly(MIB + "+65536");
                            c.commit();
                        }
                    });
            assertThat(checkpoints(d.name())).containsExactly("tm-3");

            Capture open = hv.capture(request(d.name(), "tm-3", "tm-4"));
            signal("STOP", pid);
            try {
                long t0 = System.nanoTime();
                assertThatThrownBy(open::close)
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining("stopped");
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(bound);
            } finally {
                signal("CONT", pid);
            }
            await().atMost(Duration.ofSeconds(60))
                    .ignoreException(RetriableException.class)
                    .untilAsserted(() -> {
                        try (Capture c = hv.capture(request(d.name(), "tm-3", "tm-5"))) {
                            assertThat(c.disks().get(0).incremental()).isTrue();
                            c.commit();
                        }
                    });
            assertThat(checkpoints(d.name())).containsExactly("tm-5");
        }
    }

    private static void signal(String name, long pid) throws IOException, InterruptedException {
        assertThat(new ProcessBuilder("kill", "-" + name, Long.toString(pid))
                        .start()
                        .waitFor())
                .isZero();
    }

    @Test
    void aSecondCaptureOfTheSameDomainIsRefusedWhileOneIsOpen() throws IOException {
        try (LibvirtDomain d = libvirtd.startDomain("lv-twice", 16 * MIB);
                Capture c = hypervisor.capture(request(d.name(), null, "tm-1"))) {
            assertThat(c.disks()).extracting(DiskExport::disk).containsExactly("vda");
            assertThatThrownBy(() -> hypervisor.capture(request(d.name(), null, "tm-2")))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("already open");
        }
    }

    @Test
    void theBackupWorkerMakesAFullThenAnIncrementalRestorePointThatRestoreBitIdentically() throws IOException {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults());
        try (LibvirtDomain d = libvirtd.startDomain("lv-worker", 32 * MIB, 16 * MIB);
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hypervisor,
                        repo,
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            d.write("vda", 0, 3 * (int) MIB, 0x5a);
            d.write("vda", 20 * MIB, 100_000, 0x5b);
            d.write("sda", 7 * MIB, (int) MIB, 0x5c);
            SnapshotJob job =
                    new SnapshotJob(d.name(), "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now());
            String vdaAt1 = d.model("vda").sha256();
            String sdaAt1 = d.model("sda").sha256();

            Manifest full = worker.backup("j1", job);

            d.write("vda", MIB + 5, 10, 0x61);
            d.write("sda", 15 * MIB, 4096, 0x62);
            String vdaAt2 = d.model("vda").sha256();
            String sdaAt2 = d.model("sda").sha256();

            Manifest inc = worker.backup("j2", job);

            assertThat(full.incremental()).isFalse();
            assertThat(inc.incremental()).isTrue();
            assertThat(inc.parent()).contains(full.id());
            // one small write per disk: read as the dirty granule of libvirt's bitmap and stored as a
            // patch (ADR 15), at most a quarter of a chunk, not the whole chunk
            assertThat(inc.disk("vda").orElseThrow().bytesRead())
                    .isPositive()
                    .isLessThanOrEqualTo(repo.config().chunkSize() / 4);
            assertThat(inc.disk("sda").orElseThrow().bytesRead())
                    .isPositive()
                    .isLessThanOrEqualTo(repo.config().chunkSize() / 4);
            assertThat(restoredSha(repo, full, "vda")).isEqualTo(vdaAt1);
            assertThat(restoredSha(repo, full, "sda")).isEqualTo(sdaAt1);
            assertThat(restoredSha(repo, inc, "vda")).isEqualTo(vdaAt2);
            assertThat(restoredSha(repo, inc, "sda")).isEqualTo(sdaAt2);
            assertThat(checkpoints(d.name()))
                    .containsExactly(inc.disk("vda").orElseThrow().checkpoint());
        }
    }

    private String restoredSha(Repository repo, Manifest m, String disk) {
        return new Restorer(repo, 2)
                .restoreDisk(m, disk, dir.resolve(m.id() + "-" + disk + ".raw"), Restorer.Progress.NONE)
                .sha256();
    }
}
