package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A slow scratch image must not stall the guest (issue 15, item 6). The scratch images of the
 * captures are written through a QEMU throttle of a few KiB/s; right after the snapshot moment the
 * "guest" (HMP {@code qemu-io} through its own device) overwrites a cluster the capture has not
 * copied yet, so QEMU must first copy the old data into the slow scratch. With the bound, the write
 * goes ahead after the timeout, the job fails with the reason and no restore point, and nothing is
 * left in QEMU; without it (the classic fleece job, as before the bound), the write waits for the
 * slow copy.
 */
class CopyBeforeWriteBoundIT {

    private static final int MIB = 1 << 20;
    private static final int CLUSTER = 64 << 10;
    /** A 64 KiB copy takes 16 s at this rate. */
    private static final long SLOW_SCRATCH = 4096;

    private static final Duration TIMEOUT = Duration.ofSeconds(1);
    /** The timeout plus slack for a loaded machine under TCG; far below the slow copy's 16 s. */
    private static final Duration BOUND = Duration.ofSeconds(8);

    @TempDir
    Path dir;

    private Repository repo;
    private QmpHypervisor hv;
    private BackupWorker worker;
    private final AtomicLong slowestWriteNanos = new AtomicLong(-1);
    private volatile QemuVm guest;
    private volatile boolean writeAfterCapture;
    private int jobs;

    @BeforeEach
    void setUp() throws IOException {
        Path root = Files.createDirectories(dir.resolve("repo"));
        repo = Repository.openOrInit(new FileObjectTarget(root), RepositoryConfig.defaults());
        hv = new QmpHypervisor(dir);
        CaptureHooks hooks = new CaptureHooks() {
            @Override
            public void onCaptured(String vm, Instant capturedAt) {
                if (writeAfterCapture) {
                    overwriteUncopiedClusters();
                }
            }
        };
        worker = new BackupWorker(
                "hv1",
                hv,
                repo,
                new RecordingEventBus(),
                Clock.systemUTC(),
                dir.resolve("work"),
                hooks,
                NbdBlockSource::open);
    }

    @AfterEach
    void tearDown() {
        worker.close();
        hv.close();
    }

    /**
     * The first write's copy passes the throttle at once (its bucket starts empty); the second's
     * must wait for the throttle: that is the one timed.
     */
    private void overwriteUncopiedClusters() {
        guest.write("sd0", MIB, CLUSTER, 0x41);
        long t0 = System.nanoTime();
        guest.write("sd0", 3L * MIB, CLUSTER, 0x42);
        slowestWriteNanos.set(System.nanoTime() - t0);
    }

    @Test
    void aGuestWriteWaitsAtMostTheTimeoutForASlowScratchAndTheJobFailsWithoutARestorePoint() throws IOException {
        hv.cbwTimeout(TIMEOUT);
        try (QemuVm vm = QemuVm.start(dir, "cbw1", 16L * MIB)) {
            guest = vm;
            vm.write("sd0", 0, 4 * MIB, 0x01);
            Manifest first = backup("cbw1");
            List<String> checkpoints = vm.bitmapNames("sd0");

            // changed since the first point, so the incremental reads them and a write to them waits for a copy
            vm.write("sd0", MIB, CLUSTER, 0x31);
            vm.write("sd0", 3L * MIB, CLUSTER, 0x32);
            hv.throttleScratch(SLOW_SCRATCH);
            writeAfterCapture = true;
            assertThatThrownBy(() -> backup("cbw1"))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(
                            "copy-before-write to the scratch image of disk sd0 of VM 'cbw1' took" + " longer than 1 s")
                    .hasMessageContaining("the guest's write went ahead and this snapshot was abandoned")
                    .hasMessageContaining("the job is retried");
            assertThat(Duration.ofNanos(slowestWriteNanos.get()))
                    .as("the guest write behind a slow copy-before-write")
                    .isGreaterThanOrEqualTo(TIMEOUT.minusMillis(100))
                    .isLessThan(BOUND);

            assertThat(repo.manifests("cbw1")).extracting(Manifest::id).containsExactly(first.id());
            assertNothingLeft(vm);
            assertThat(vm.bitmapNames("sd0")).as("the checkpoint is as before").isEqualTo(checkpoints);

            // the retry, with a scratch at full speed, sees every change since the first point
            hv.throttleScratch(0);
            writeAfterCapture = false;
            vm.write("sd0", 5L * MIB, CLUSTER, 0x43);
            String expected = vm.model("sd0").sha256();
            Manifest next = backup("cbw1");
            assertThat(next.disk("sd0").orElseThrow().fullReason()).isEmpty();
            assertThat(restoredSha(next)).isEqualTo(expected);
            assertNothingLeft(vm);
        }
    }

    /**
     * The control, and how it was before the bound: the classic fleece job makes the same write
     * wait for the slow copy (16 s), and its point is still the disk as it was at the snapshot.
     */
    @Test
    void withoutTheBoundTheSameWriteWaitsForTheSlowScratchAndThePointIsExact() throws IOException {
        hv.cbwTimeout(Duration.ZERO);
        try (QemuVm vm = QemuVm.start(dir, "cbw2", 16L * MIB)) {
            guest = vm;
            vm.write("sd0", 0, 4 * MIB, 0x01);
            backup("cbw2");
            hv.throttleScratch(SLOW_SCRATCH);
            writeAfterCapture = true;
            vm.write("sd0", 8L * MIB, CLUSTER, 0x44);
            String atSnapshot = vm.model("sd0").sha256();
            Manifest m = backup("cbw2");
            assertThat(Duration.ofNanos(slowestWriteNanos.get())).isGreaterThan(BOUND);
            assertThat(restoredSha(m)).isEqualTo(atSnapshot);
            assertNothingLeft(vm);
        }
    }

    /**
     * A worker gone mid-capture (the adapter closed under an open capture, as a crash leaves it)
     * leaves the guest device on our copy-before-write filter; the next adapter's first contact
     * moves it back and removes every node; and a guest a dead capture left paused runs again.
     */
    @Test
    void theFirstContactAfterACrashMovesTheDeviceBackRemovesTheFiltersAndLetsAPausedGuestRun() throws Exception {
        try (QemuVm vm = QemuVm.start(dir, "cbw3", 16L * MIB)) {
            guest = vm;
            vm.write("sd0", 0, MIB, 0x01);
            String node = vm.nodeName("sd0");
            QmpHypervisor crashing = new QmpHypervisor(dir);
            crashing.capture(new io.tidemark.core.hypervisor.CaptureRequest(
                    "cbw3", java.util.Optional.empty(), "tm-1", Files.createDirectories(dir.resolve("w1"))));
            crashing.close(); // abandoned: everything stays in QEMU
            assertThat(drive(vm)).startsWith("tmfl-").endsWith("-c0");

            // and a capture that died while the guest was paused for its filters
            vm.qmp("stop", null);
            vm.qmp(
                    "object-add",
                    QemuVm.args().put("qom-type", "throttle-group").put("id", "tmfl-" + deadTag() + "-paused"));

            try (QmpHypervisor next = new QmpHypervisor(dir)) {
                assertThat(next.list())
                        .extracting(io.tidemark.core.hypervisor.VmInfo::name)
                        .containsExactly("cbw3");
            }
            assertThat(drive(vm)).isEqualTo(node);
            assertThat(vm.qmp("query-status", null).path("running").asBoolean()).isTrue();
            assertNothingLeft(vm);
            vm.write("sd0", 2L * MIB, CLUSTER, 0x02); // the device writes through its own node again
            String expected = vm.model("sd0").sha256();
            Manifest m = backup("cbw3");
            assertThat(restoredSha(m)).isEqualTo(expected);
        }
    }

    private static String drive(QemuVm vm) {
        return vm.qmp(
                        "qom-get",
                        QemuVm.args().put("path", "/machine/peripheral/sd0").put("property", "drive"))
                .asText();
    }

    private static void assertNothingLeft(QemuVm vm) {
        assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
        assertThat(vm.qmp("query-block-exports", null)).isEmpty();
        List<String> nodes = new ArrayList<>();
        vm.qmp("query-named-block-nodes", QemuVm.args().put("flat", true))
                .forEach(n -> nodes.add(n.path("node-name").asText()));
        assertThat(nodes).noneMatch(n -> n.startsWith("tmfl-"));
        List<String> objects = new ArrayList<>();
        for (JsonNode o : vm.qmp("qom-list", QemuVm.args().put("path", "/objects"))) {
            objects.add(o.path("name").asText());
        }
        assertThat(objects).noneMatch(n -> n.startsWith("tmfl-"));
        assertThat(drive(vm)).isEqualTo(vm.nodeName("sd0"));
    }

    private Manifest backup(String vm) {
        return worker.backup(
                "job-" + ++jobs, new SnapshotJob(vm, "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now()));
    }

    private String restoredSha(Manifest m) throws IOException {
        DiskEntry d = m.disk("sd0").orElseThrow();
        Path out = dir.resolve("restored-" + m.id() + ".raw");
        String sha = new Restorer(repo, 2)
                .restoreDisk(m, d.name(), out, Restorer.Progress.NONE)
                .sha256();
        Files.delete(out);
        return sha;
    }

    /** The tag a capture of a process that has exited carried. */
    private static String deadTag() throws IOException, InterruptedException {
        Process p = new ProcessBuilder("sleep", "60").start();
        long start = p.info().startInstant().orElseThrow().getEpochSecond();
        p.destroyForcibly();
        p.waitFor();
        return Long.toString(p.pid(), 36) + "." + Long.toString(start, 36) + ".1";
    }
}
