package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.process.ExternalCommand;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.workers.guest.TinyGuest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM's DR point is one instant across disks whose replicas are on different DR daemons: a real
 * Linux guest ({@link TinyGuest}) writes two disks in lockstep — record n (its number in ASCII, one
 * sector, fsync'd) to {@code /dev/vdb}, then to {@code /dev/vdc}, then n + 1 — while its disks are
 * mirrored (one {@code qemu-storage-daemon} per disk) and DR points are taken; every point's pair
 * must be a state the guest passed through: records 1..k and 1..k' with |k - k'| ≤ 1, nothing torn,
 * nothing after. ({@link DrVmPoints} pauses the vCPUs, which stops a guest's I/O, for the daemons'
 * transactions.) The points are read by {@code qemu-img convert} from their qcow2 chains.
 *
 * <p>Limit: like ConsistencyGroupIT's note, this guest writes too slowly to catch per-daemon
 * transactions issued back to back without the pause (tried: that variant passed too); it guards the
 * pause path with a real guest (stop, transactions, cont; no torn or reordered record).
 */
class DrVmPointsGuestIT {

    private static final Duration GUEST = Duration.ofSeconds(120);
    private static final int SECTOR = 512;
    private static final long RAW = 8L << 20;
    private static final long DATA = 32L << 20;
    private static final int SLOTS = (int) (RAW / SECTOR) - 1;

    @TempDir
    Path dir;

    @Test
    void everyPointOfTwoDisksOnTwoDaemonsIsAStateTheGuestPassedThrough() throws Exception {
        Path s = dir.resolve("s");
        List<DrVmPoints.Point> taken = new ArrayList<>();
        ContinuousProtection protection = new ContinuousProtection(
                new RecordingEventBus(), Clock.systemUTC(), Duration.ofMillis(100), Duration.ofSeconds(1));
        try (TinyGuest guest = TinyGuest.boot(s, "g3", DATA, 2, RAW);
                DrNbdSite dr0 = DrNbdSite.start(s, "g3-vd0", DATA);
                DrNbdSite dr1 = DrNbdSite.start(s, "g3-vd1", RAW);
                DrNbdSite dr2 = DrNbdSite.start(s, "g3-vd2", RAW)) {
            protection.protect(new ContinuousProtection.Protected(
                    "g3",
                    guest.qmpSocket(),
                    "cdp",
                    Duration.ofSeconds(5),
                    "nbd+unix:///{vm}-{disk}?socket=" + s + "/{vm}-{disk}.nbd"));
            await().atMost(GUEST)
                    .until(() -> protection.disks("g3").size() == 3
                            && protection.disks("g3").values().stream().allMatch(MirrorState::inSync));
            List<DrVmPoints.Disk> disks = new ArrayList<>();
            for (DrNbdSite dr : List.of(dr0, dr1, dr2)) {
                String disk = dr.exportName().substring("g3-".length());
                disks.add(new DrVmPoints.Disk(disk, dr.qmpSocket(), Optional.empty(), dir.resolve("p/" + disk)));
            }
            DrVmPoints points = new DrVmPoints("g3", guest.qmpSocket(), disks, Clock.systemUTC());
            long writer = guest.spawn("i=0; while [ $i -lt " + (SLOTS - 1) + " ]; do i=$((i+1));"
                    + " printf '%d\\n' $i | dd of=/dev/vdb bs=512 seek=$i conv=sync,fsync 2>/dev/null;"
                    + " printf '%d\\n' $i | dd of=/dev/vdc bs=512 seek=$i conv=sync,fsync 2>/dev/null;"
                    + " echo $i > /run/n; done");
            try {
                long seen = awaitRecords(guest, 10);
                for (int j = 0; j < 3; j++) {
                    taken.add(points.take(protection.disks("g3")));
                    seen = awaitRecords(guest, seen + 5); // still writing after each point
                }
            } finally {
                guest.sh("kill " + writer, GUEST);
                protection.close();
            }
        }
        for (DrVmPoints.Point p : taken) {
            int k1 = prefix(bytes(p, "vd1"));
            int k2 = prefix(bytes(p, "vd2"));
            assertThat(k1)
                    .as("point %s: records on vd1 (vd2 holds %d)", p.id(), k2)
                    .isBetween(k2 - 1, k2 + 1);
            assertThat(Math.max(k1, k2))
                    .as("point %s was taken while the guest wrote", p.id())
                    .isPositive();
        }
    }

    private byte[] bytes(DrVmPoints.Point p, String disk) throws IOException {
        Path raw = dir.resolve(p.id() + "-" + disk + ".raw");
        ExternalCommand.of(
                        "qemu-img",
                        "convert",
                        "-f",
                        "qcow2",
                        "-O",
                        "raw",
                        p.disks().get(disk).file().toString(),
                        raw.toString())
                .mergeStderr()
                .run();
        return Files.readAllBytes(raw);
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
