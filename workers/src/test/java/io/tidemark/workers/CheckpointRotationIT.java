package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import io.tidemark.testkit.qemu.QmpTap;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The topology run's lost write (vm1a, point 196999 and every point after it): a bounded capture
 * puts its copy-before-write filter under the device (the snapshot moment) and only then rotated the
 * checkpoint bitmaps. A write in between went into the old checkpoint only, so its point read the
 * old bytes from the snapshot (right), and the new checkpoint never had it, so no later point read
 * it: every point after restored to bytes the disk never held. The pause around the filters does
 * not keep such a write out: HMP {@code qemu-io} (the soak's "guest") writes through the device of a
 * paused VM. Here a {@link QmpTap} in front of the VM's QMP socket makes that write at that exact
 * step; the next point must have it.
 */
class CheckpointRotationIT {

    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private volatile QemuVm guest;
    private volatile boolean armed;
    private volatile boolean filterIn;
    private volatile boolean failFilter;
    private volatile String beforeInjected;
    private volatile String afterInjected;
    private int jobs;

    @Test
    void aWriteBetweenTheSnapshotMomentAndTheEndOfTheOldCheckpointIsInTheNextPoint() throws IOException {
        Path real = Files.createDirectories(dir.resolve("real"));
        Path tapped = Files.createDirectories(dir.resolve("tap"));
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        try (QemuVm vm = QemuVm.start(real, "rot1", 16L * MIB);
                QmpTap tap = QmpTap.start(tapped.resolve("rot1.qmp"), vm.qmpSocket(), this::beforeCommand);
                QmpHypervisor hv = new QmpHypervisor(tapped)) {
            guest = vm;
            hv.cbwTimeout(Duration.ofSeconds(10));
            BackupWorker worker = new BackupWorker(
                    "hv1",
                    hv,
                    repo,
                    new RecordingEventBus(),
                    Clock.systemUTC(),
                    dir.resolve("work"),
                    CaptureHooks.NONE,
                    NbdBlockSource::open);
            try {
                vm.write("sd0", 0, 4 * MIB, 0x01);
                backup(worker, "rot1");

                armed = true;
                Manifest second = backup(worker, "rot1");
                assertThat(afterInjected)
                        .as("the write between the filters and the old checkpoint's end")
                        .isNotNull();
                assertThat(second.disk("sd0").orElseThrow().fullReason()).isEmpty();
                assertThat(restoredSha(repo, second))
                        .as("the point is the disk at its snapshot moment, before the write")
                        .isEqualTo(beforeInjected);

                Manifest third = backup(worker, "rot1");
                assertThat(third.disk("sd0").orElseThrow().fullReason()).isEmpty();
                assertThat(restoredSha(repo, third))
                        .as("the next point has the write (before the fix: lost, the disk as it never was)")
                        .isEqualTo(afterInjected)
                        .isEqualTo(vm.model("sd0").sha256());
            } finally {
                worker.close();
            }
        }
    }

    /**
     * The state the new order adds: the new checkpoint started, the old one still recording, and
     * the capture fails there (QEMU refuses to move the device onto the filter). Closing merges the
     * new checkpoint into the old one, which still records, and removes it; the next point is
     * incremental and has every write, also the one made in that state.
     */
    @Test
    void aCaptureThatFailsBeforeTheOldCheckpointStopsLeavesItRecordingAndLosesNothing() throws IOException {
        Path real = Files.createDirectories(dir.resolve("real"));
        Path tapped = Files.createDirectories(dir.resolve("tap"));
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        try (QemuVm vm = QemuVm.start(real, "rot2", 16L * MIB);
                QmpTap tap = QmpTap.start(tapped.resolve("rot2.qmp"), vm.qmpSocket(), this::beforeCommand);
                QmpHypervisor hv = new QmpHypervisor(tapped)) {
            guest = vm;
            hv.cbwTimeout(Duration.ofSeconds(10));
            BackupWorker worker = new BackupWorker(
                    "hv1",
                    hv,
                    repo,
                    new RecordingEventBus(),
                    Clock.systemUTC(),
                    dir.resolve("work"),
                    CaptureHooks.NONE,
                    NbdBlockSource::open);
            try {
                vm.write("sd0", 0, 4 * MIB, 0x01);
                backup(worker, "rot2");
                List<String> checkpoints = vm.bitmapNames("sd0");
                vm.write("sd0", 10L * MIB, 64 << 10, 0x22);

                failFilter = true;
                assertThatThrownBy(() -> backup(worker, "rot2")).hasMessageContaining("tmfl-no-such-node");
                assertThat(failFilter)
                        .as("the capture got as far as the filter")
                        .isFalse();
                assertThat(vm.bitmapNames("sd0")).as("the old checkpoint alone").isEqualTo(checkpoints);
                assertThat(vm.bitmap("sd0", checkpoints.get(0))
                                .orElseThrow()
                                .path("recording")
                                .asBoolean())
                        .as("the old checkpoint records")
                        .isTrue();

                Manifest next = backup(worker, "rot2");
                assertThat(next.disk("sd0").orElseThrow().fullReason()).isEmpty();
                assertThat(restoredSha(repo, next)).isEqualTo(vm.model("sd0").sha256());
            } finally {
                worker.close();
            }
        }
    }

    /**
     * Armed, after the capture's {@code qom-set} moved the device onto its filter: before the next
     * command is passed on (the bitmap transaction that stops the old checkpoint, or {@code cont}
     * where a capture of the changed blocks only stopped it before the filters, design §5.1.1), a 64
     * KiB write at a 4 KiB offset that is not granule-aligned, as the soak's writer makes.
     */
    private String beforeCommand(String line) {
        if (failFilter && line.contains("\"qom-set\"") && line.contains("\"value\":\"tmfl-")) {
            failFilter = false;
            guest.write("sd0", 6L * MIB + 5 * 4096, 64 << 10, 0x6b); // after the new checkpoint started
            return line.replaceFirst("\"value\":\"tmfl-[^\"]*\"", "\"value\":\"tmfl-no-such-node\"");
        }
        if (!armed) {
            return line;
        }
        if (line.contains("\"qom-set\"") && line.contains("\"value\":\"tmfl-")) {
            filterIn = true;
        } else if (filterIn) { // the next command: the old checkpoint's end, or `cont` when it ended before (§5.1.1)
            armed = false;
            beforeInjected = guest.model("sd0").sha256();
            guest.write("sd0", 2L * MIB + 3 * 4096, 64 << 10, 0x5a);
            afterInjected = guest.model("sd0").sha256();
        }
        return line;
    }

    private Manifest backup(BackupWorker worker, String vm) {
        return worker.backup(
                "job-" + ++jobs, new SnapshotJob(vm, "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now()));
    }

    private String restoredSha(Repository repo, Manifest m) throws IOException {
        DiskEntry d = m.disk("sd0").orElseThrow();
        Path out = dir.resolve("restored-" + m.id() + ".raw");
        String sha = new Restorer(repo, 2)
                .restoreDisk(m, d.name(), out, Restorer.Progress.NONE)
                .sha256();
        Files.delete(out);
        return sha;
    }
}
