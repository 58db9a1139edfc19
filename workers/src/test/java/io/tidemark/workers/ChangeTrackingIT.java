package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Change tracking that survives real life, on real QEMU: whenever a checkpoint cannot be trusted
 * (QEMU killed, a raw or qcow2 v2 disk after a QEMU restart, a bitmap removed) the worker reads the whole disk, stores
 * only the chunks the repository lacks, and the manifest says why. Also the read bandwidth limit.
 */
class ChangeTrackingIT {

    private static final int MIB = 1 << 20;
    private static final int CHUNK = RepositoryConfig.defaults().chunkSize();

    @TempDir
    Path dir;

    private QmpRig rig;
    private Repository repo;
    private QmpHypervisor hv;
    private BackupWorker worker;
    private int pattern = 1;
    private int jobs;

    @BeforeEach
    void setUp() throws IOException {
        rig = new QmpRig(dir);
        repo = rig.repo;
        hv = rig.hv;
        worker = rig.worker;
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void rawAndQcow2V2DisksAfterAQemuRestartAndAMissingBitmapAreReadInFullAndStoreOnlyTheChangedChunks()
            throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "ct1", 16L * MIB)) {
            vm.attach("raw0", 8L * MIB, "raw", "");
            vm.attach("old0", 8L * MIB, "qcow2", "compat=0.10");
            for (String d : List.of("sd0", "raw0", "old0")) {
                writeChunks(vm, d, 0, 5, 9);
            }
            Manifest first = backup("ct1");
            assertThat(first.disks()).extracting(DiskEntry::name).containsExactly("sd0", "raw0", "old0");
            assertThat(first.bytesNew()).isEqualTo(9L * CHUNK);

            for (String d : List.of("sd0", "raw0", "old0")) {
                writeChunks(vm, d, 20);
            }
            long chunksBefore = chunkObjects();
            Manifest second = backup("ct1");
            DiskEntry sd0 = second.disk("sd0").orElseThrow();
            assertThat(sd0.fullReason()).isEmpty();
            assertThat(sd0.bytesRead()).isEqualTo(CHUNK);
            // raw and qcow2 v2 keep their checkpoints in QEMU's memory: incremental while it runs
            for (String d : List.of("raw0", "old0")) {
                DiskEntry e = second.disk(d).orElseThrow();
                assertThat(e.fullReason()).as(d).isEmpty();
                assertThat(e.bytesRead()).as(d).isEqualTo(CHUNK);
            }
            assertThat(chunkObjects() - chunksBefore).isEqualTo(3);
            assertRestores(vm, second);

            // a QEMU restart loses them (qcow2 v3 stores its bitmap on a clean quit)
            vm.restart();
            for (String d : List.of("sd0", "raw0", "old0")) {
                writeChunks(vm, d, 30);
            }
            chunksBefore = chunkObjects();
            Manifest afterRestart = backup("ct1");
            DiskEntry sd0After = afterRestart.disk("sd0").orElseThrow();
            assertThat(sd0After.fullReason()).isEmpty();
            DiskEntry raw = afterRestart.disk("raw0").orElseThrow();
            assertThat(raw.fullReason()).hasValueSatisfying(r -> assertThat(r.detail())
                    .contains("missing", "(raw) cannot store persistent bitmaps", "do not survive a QEMU restart"));
            DiskEntry old = afterRestart.disk("old0").orElseThrow();
            assertThat(old.fullReason()).hasValueSatisfying(r -> assertThat(r.detail())
                    .contains("missing", "qcow2 v2 (compat=0.10)", "do not survive a QEMU restart"));
            for (DiskEntry full : List.of(raw, old)) {
                // the whole disk was read (every written chunk), but only the changed chunk uploaded
                assertThat(full.bytesRead()).as(full.name()).isGreaterThanOrEqualTo(5L * CHUNK);
                assertThat(full.bytesNew()).as(full.name()).isEqualTo(CHUNK);
            }
            assertThat(chunkObjects() - chunksBefore).isEqualTo(3);
            assertRestores(vm, afterRestart);

            // a bitmap that disappeared (removed by an operator or another tool)
            vm.qmp(
                    "block-dirty-bitmap-remove",
                    QemuVm.args().put("node", vm.nodeName("sd0")).put("name", sd0After.checkpoint()));
            writeChunks(vm, "sd0", 40);
            Manifest third = backup("ct1");
            DiskEntry sd0Full = third.disk("sd0").orElseThrow();
            assertThat(sd0Full.fullReason())
                    .hasValueSatisfying(r -> assertThat(r.detail()).contains(sd0After.checkpoint() + " missing"));
            assertThat(sd0Full.bytesRead()).isEqualTo(6L * CHUNK);
            assertThat(sd0Full.bytesNew()).isEqualTo(CHUNK);
            assertRestores(vm, third);

            // and the next one is incremental again
            writeChunks(vm, "sd0", 41);
            DiskEntry again = backup("ct1").disk("sd0").orElseThrow();
            assertThat(again.fullReason()).isEmpty();
            assertThat(again.bytesRead()).isEqualTo(CHUNK);
        }
    }

    @Test
    void afterQemuWasKilledTheNextJobReadsEverythingStoresOnlyTheChangesAndSaysWhy() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "ct2", 16L * MIB)) {
            writeChunks(vm, "sd0", 0, 1, 2, 3, 30);
            Manifest first = backup("ct2");
            vm.restart(); // a clean quit stores the checkpoint in the qcow2
            writeChunks(vm, "sd0", 1, 50);
            vm.kill(); // kill -9: the stored checkpoint stays marked in use
            vm.restart();
            long chunksBefore = chunkObjects();
            Manifest afterCrash = backup("ct2");
            DiskEntry d = afterCrash.disk("sd0").orElseThrow();
            assertThat(d.fullReason()).hasValueSatisfying(r -> assertThat(r.detail())
                    .contains(first.disk("sd0").orElseThrow().checkpoint(), "inconsistent"));
            assertThat(d.bytesRead()).isEqualTo(6L * CHUNK);
            assertThat(d.bytesNew()).isEqualTo(2L * CHUNK);
            assertThat(chunkObjects() - chunksBefore).isEqualTo(2);
            assertRestores(vm, afterCrash);
        }
    }

    @Test
    void aJobWithAReadBandwidthLimitReadsAndRestoresEverythingOnRealQemu() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "ct3", 32L * MIB)) {
            for (int i = 0; i < 12; i++) {
                vm.write("sd0", (long) i * MIB, MIB, pattern++);
            }
            long limit = 4L * MIB;
            Manifest m = worker.backup(
                    "job-" + ++jobs,
                    new SnapshotJob(
                            "ct3",
                            "hv1",
                            "pol",
                            Trigger.schedule("pol"),
                            List.of(),
                            Instant.now(),
                            Optional.empty(),
                            Optional.empty(),
                            OptionalLong.of(limit)));
            // the pacing itself (within 10 % of the limit) is checked on a fake clock in
            // BackupPolicyTest.theReadBandwidthLimitIsHonouredWithinTenPercent; here: a limited job on
            // real QEMU reads all of its data and the point restores as the disk was
            assertThat(m.bytesRead()).isEqualTo(12L * MIB);
            assertRestores(vm, m);
        }
    }

    // ---- helpers

    @Test
    void twoRepositoriesProtectingOneVmKeepTheirOwnCheckpointsAndBothStayIncremental() throws IOException {
        Repository other = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo-b"))), RepositoryConfig.defaults());
        try (QemuVm vm = QemuVm.start(dir, "ct4", 4L * MIB);
                BackupWorker second = new BackupWorker(
                        "hv1",
                        hv,
                        other,
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work-b"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            for (int round = 0; round < 3; round++) {
                writeChunks(vm, "sd0", round);
                Manifest a = backup("ct4");
                Manifest b = second.backup(
                        "job-b-" + round,
                        new SnapshotJob("ct4", "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now()));
                int r = round;
                if (r > 0) {
                    // on main each repository's capture removed the other's checkpoint as a leftover: full reads
                    assertThat(a.disks()).allSatisfy(d -> assertThat(d.fullReason())
                            .as("repo A, round %d", r)
                            .isEmpty());
                    assertThat(b.disks()).allSatisfy(d -> assertThat(d.fullReason())
                            .as("repo B, round %d", r)
                            .isEmpty());
                }
                assertThat(a.disks()).hasSize(1);
                assertThat(b.disks()).hasSize(1);
                assertRestores(vm, a);
            }
        }
    }

    private Manifest backup(String vm) {
        return rig.backup(vm);
    }

    /** Writes whole chunks, each with a pattern no other chunk has, so each is one new object. */
    private void writeChunks(QemuVm vm, String disk, int... chunkNumbers) {
        for (int c : chunkNumbers) {
            vm.write(disk, (long) c * CHUNK, CHUNK, pattern++);
        }
    }

    private long chunkObjects() {
        return rig.chunkObjects();
    }

    private void assertRestores(QemuVm vm, Manifest m) throws IOException {
        for (DiskEntry d : m.disks()) {
            Path out = dir.resolve("restored-" + m.id() + "-" + d.name() + ".raw");
            String sha = new Restorer(repo, 4)
                    .restoreDisk(m, d.name(), out, Restorer.Progress.NONE)
                    .sha256();
            assertThat(sha)
                    .as("restored %s of %s", d.name(), m.id())
                    .isEqualTo(vm.model(d.name()).sha256());
            Files.delete(out);
        }
    }
}
