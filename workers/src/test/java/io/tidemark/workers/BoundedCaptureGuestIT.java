package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bounded capture (docs/design.md §5.1.1) inserts its copy-before-write filters one disk after
 * the other, with the guest paused by {@code stop}; a real Linux guest ({@link TinyGuest}) writing
 * two disks in lockstep — record n (its number in ASCII, one sector, fsync'd) to {@code /dev/vdb},
 * then to {@code /dev/vdc}, then n + 1 — must find every restored pair a state it passed through:
 * the two disks hold records 1..k and 1..k' with |k - k'| ≤ 1, nothing torn, nothing after.
 * (ConsistencyGroupIT checks the same with monitor-issued writes, which {@code stop} does not pause,
 * against the classic capture.)
 */
class BoundedCaptureGuestIT {

    private static final Duration GUEST = Duration.ofSeconds(120);
    private static final int SECTOR = 512;
    private static final long RAW = 8L << 20;
    private static final int SLOTS = (int) (RAW / SECTOR) - 1;

    @TempDir
    Path dir;

    @Test
    void everyRestoredPairOfDisksAGuestWritesInLockstepIsAStateItPassedThrough() throws Exception {
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        List<Manifest> points = new ArrayList<>();
        try (TinyGuest guest = TinyGuest.boot(dir.resolve("s"), "g2", 32L << 20, 2, RAW);
                QmpHypervisor hv = new QmpHypervisor(guest.qmpSocket().getParent(), dir.resolve("state"));
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        repo,
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            hv.cbwTimeout(QmpHypervisor.DEFAULT_CBW_TIMEOUT);
            long writer = guest.spawn("i=0; while [ $i -lt " + (SLOTS - 1) + " ]; do i=$((i+1));"
                    + " printf '%d\\n' $i | dd of=/dev/vdb bs=512 seek=$i conv=sync,fsync 2>/dev/null;"
                    + " printf '%d\\n' $i | dd of=/dev/vdc bs=512 seek=$i conv=sync,fsync 2>/dev/null;"
                    + " echo $i > /run/n; done");
            try {
                long seen = awaitRecords(guest, 10);
                for (int j = 0; j < 3; j++) {
                    points.add(worker.backup(
                            "j" + j,
                            new SnapshotJob("g2", "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now())));
                    seen = awaitRecords(guest, seen + 5); // still writing after each capture
                }
            } finally {
                guest.sh("kill " + writer, GUEST);
            }
        }
        for (int i = 0; i < points.size(); i++) {
            int k1 = prefix(restore(repo, points.get(i), "vd1"));
            int k2 = prefix(restore(repo, points.get(i), "vd2"));
            assertThat(k1)
                    .as("restore point %d: records on vd1 (vd2 holds %d)", i, k2)
                    .isBetween(k2 - 1, k2 + 1);
            assertThat(Math.max(k1, k2))
                    .as("restore point %d was taken while the guest wrote", i)
                    .isPositive();
        }
    }

    private static long records(TinyGuest guest) {
        String n = guest.shOk("cat /run/n 2>/dev/null || echo 0", GUEST).trim();
        return Long.parseLong(n.isEmpty() ? "0" : n);
    }

    private static long awaitRecords(TinyGuest guest, long n) {
        long deadline = System.nanoTime() + GUEST.toNanos();
        long have;
        while ((have = records(guest)) < n) {
            assertThat(System.nanoTime())
                    .as("the guest wrote %d records in time", n)
                    .isLessThan(deadline);
        }
        return have;
    }

    private byte[] restore(Repository repo, Manifest m, String disk) throws IOException {
        Path img = dir.resolve(m.id() + "-" + disk + ".raw");
        new Restorer(repo, 2).restoreDisk(m, disk, img, Restorer.Progress.NONE);
        return Files.readAllBytes(img);
    }

    /** k such that sectors 1..k hold records 1..k, whole, and every other sector is zero. */
    private static int prefix(byte[] image) {
        int k = 0;
        while (k < SLOTS && image[(k + 1) * SECTOR] != 0) {
            k++;
        }
        for (int slot = 0; slot <= SLOTS; slot++) {
            byte[] want = new byte[SECTOR];
            if (slot >= 1 && slot <= k) {
                byte[] text = (slot + "\n").getBytes(StandardCharsets.US_ASCII);
                System.arraycopy(text, 0, want, 0, text.length);
            }
            for (int b = 0; b < SECTOR; b++) {
                if (image[slot * SECTOR + b] != want[b]) {
                    throw new AssertionError(
                            "sector " + slot + " byte " + b + " is " + (image[slot * SECTOR + b] & 0xff) + ", expected "
                                    + (want[b] & 0xff) + " (records 1.." + k + "): a torn or out-of-order record");
                }
            }
        }
        return k;
    }
}
