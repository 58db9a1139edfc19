package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.format.Json;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.qmp.QmpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link DrVmPoints} on a real two-disk QEMU VM (TCG) whose disks are mirrored by {@link
 * ContinuousProtection} to two real {@code qemu-storage-daemon}s (one per disk, so the points span
 * daemons and pause the vCPUs for their transactions). Each point's bytes are read by {@code
 * qemu-img convert} from the point's qcow2 chain and compared with the fixture's model of the guest
 * disks at that moment.
 */
class DrVmPointsIT {

    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private QemuVm vm;
    private DrNbdSite dr0;
    private DrNbdSite dr1;
    private final ContinuousProtection protection = new ContinuousProtection(
            new RecordingEventBus(), Clock.systemUTC(), Duration.ofMillis(100), Duration.ofSeconds(1));

    @AfterEach
    void stopAll() {
        protection.close();
        for (AutoCloseable c : new AutoCloseable[] {vm, dr0, dr1}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    private DrVmPoints start() {
        vm = QemuVm.start(dir, "vm1", 16L * MIB, 8L * MIB);
        dr0 = DrNbdSite.start(dir, "vm1-sd0", 16L * MIB);
        dr1 = DrNbdSite.start(dir, "vm1-sd1", 8L * MIB);
        protection.protect(new ContinuousProtection.Protected(
                "vm1",
                vm.qmpSocket(),
                "cdp",
                Duration.ofSeconds(1),
                "nbd+unix:///{vm}-{disk}?socket=" + dir + "/{vm}-{disk}.nbd"));
        await().atMost(Duration.ofSeconds(120))
                .until(() -> protection.disks("vm1").size() == 2
                        && protection.disks("vm1").values().stream().allMatch(MirrorState::inSync));
        return points();
    }

    private DrVmPoints points() {
        return new DrVmPoints(
                "vm1",
                vm.qmpSocket(),
                List.of(
                        new DrVmPoints.Disk("sd0", dr0.qmpSocket(), Optional.empty(), dir.resolve("points/sd0")),
                        new DrVmPoints.Disk("sd1", dr1.qmpSocket(), Optional.of("replica"), dir.resolve("points/sd1"))),
                Clock.systemUTC());
    }

    /** Each disk's model hash now, by disk. */
    private Map<String, String> model() {
        return Map.of("sd0", vm.model("sd0").sha256(), "sd1", vm.model("sd1").sha256());
    }

    /** Each disk's bytes in the point, by disk, read by qemu-img through the point's backing chain. */
    private Map<String, String> bytes(DrVmPoints.Point p) {
        Map<String, String> out = new HashMap<>();
        p.disks().forEach((disk, dp) -> {
            Path raw = dir.resolve(p.id() + "-" + disk + ".raw");
            ExternalCommand.of(
                            "qemu-img",
                            "convert",
                            "-f",
                            "qcow2",
                            "-O",
                            "raw",
                            dp.file().toString(),
                            raw.toString())
                    .mergeStderr()
                    .run();
            out.put(disk, DrNbdSite.sha256(raw));
        });
        return out;
    }

    @Test
    void pointsOfAllDisksRestoreAsTheVmWasAndRetentionMergesWithoutBreakingLaterOnes() throws Exception {
        DrVmPoints points = start();
        Map<String, Map<String, String>> expected = new HashMap<>();
        vm.write("sd0", MIB, 64 * 1024, 0x41);
        vm.write("sd1", 2L * MIB, 64 * 1024, 0x42);
        DrVmPoints.Point p1 = points.take(protection.disks("vm1"));
        expected.put(p1.id(), model());
        vm.write("sd0", MIB, 4096, 0x43);
        vm.write("sd1", 7L * MIB, 64 * 1024, 0x44);
        DrVmPoints.Point p2 = points.take(protection.disks("vm1"));
        expected.put(p2.id(), model());
        vm.write("sd0", 12L * MIB, 64 * 1024, 0x45);
        DrVmPoints.Point p3 = points.take(protection.disks("vm1"));
        expected.put(p3.id(), model());
        vm.write("sd1", 2L * MIB, 4096, 0x46);
        vm.write("sd0", 3L * MIB, 4096, 0x47);
        DrVmPoints.Point p4 = points.take(protection.disks("vm1"));
        expected.put(p4.id(), model());
        vm.write("sd0", 5L * MIB, 4096, 0x48); // after every point: only the replicas have it

        assertThat(p1.disks().get("sd0").parent()).isEmpty();
        assertThat(p2.disks().get("sd0").parent()).contains(p1.id());
        assertThat(p4.disks().get("sd1").parent()).contains(p3.id());
        assertThat(p4.mirrorInSync()).isTrue();
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p1.id(), p2.id(), p3.id(), p4.id());
        for (DrVmPoints.Point p : points.list()) {
            assertThat(bytes(p)).as("point %s", p.id()).isEqualTo(expected.get(p.id()));
        }

        // a middle point dropped: p3 (its child) is merged into p2's file and keeps its bytes
        Set<Instant> keep134 = Set.of(p1.createdAt(), p3.createdAt(), p4.createdAt());
        assertThat(points.prune(
                        times -> times.stream().filter(keep134::contains).collect(Collectors.toSet())))
                .containsExactly(p2.id());
        // then the oldest full one: p3 becomes the full point
        assertThat(points.prune(times -> Set.of(p3.createdAt(), p4.createdAt())))
                .containsExactly(p1.id());
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p3.id(), p4.id());
        for (DrVmPoints.Point p : points.list()) {
            assertThat(bytes(p)).as("point %s after pruning", p.id()).isEqualTo(expected.get(p.id()));
        }
        assertThat(points.list().get(0).disks().get("sd0").parent()).isEmpty();
        assertThat(points.list().get(1).disks().get("sd1").parent()).contains(p3.id());
        try (var files = Files.list(dir.resolve("points/sd0"))) {
            assertThat(files.map(f -> f.getFileName().toString()).sorted())
                    .containsExactly(p3.id() + ".json", p3.id() + ".qcow2", p4.id() + ".json", p4.id() + ".qcow2");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }

        // the chain continues from the newest point after pruning
        vm.write("sd1", 6L * MIB, 4096, 0x49);
        DrVmPoints.Point p5 = points.take(protection.disks("vm1"));
        assertThat(p5.disks().get("sd0").parent()).contains(p4.id());
        assertThat(bytes(p5)).isEqualTo(model());
        expected.put(p5.id(), model());

        // a drop interrupted by a crash after its record was renamed (p3 on sd1 only): p3 is no VM point
        // any more, and the next prune finishes merging it into p4, whose bytes stay those of its moment
        Files.move(dir.resolve("points/sd1/" + p3.id() + ".json"), dir.resolve("points/sd1/" + p3.id() + ".merging"));
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p4.id(), p5.id());
        assertThat(points.prune(times -> Set.copyOf(times))).isEmpty();
        assertThat(dir.resolve("points/sd1/" + p3.id() + ".merging")).doesNotExist();
        assertThat(dir.resolve("points/sd1/" + p3.id() + ".qcow2")).doesNotExist();
        for (DrVmPoints.Point p : points.list()) {
            assertThat(bytes(p)).as("point %s after the resumed drop", p.id()).isEqualTo(expected.get(p.id()));
        }
        assertThat(points.list().get(0).disks().get("sd1").parent()).isEmpty();
    }

    @Test
    void anInterruptedPointIsNeverListedAndTheNextIsAFullOneSayingWhy() throws Exception {
        DrVmPoints points = start();
        vm.write("sd0", MIB, 64 * 1024, 0x51);
        DrVmPoints.Point p1 = points.take(protection.disks("vm1"));

        // a taker killed after sd0's point was prepared and its copy started, before any record
        try (QmpClient q = QmpClient.connect(dr0.qmpSocket())) {
            DrPoints sd0 = new DrPoints(dr0.qmpSocket(), "replica", dir.resolve("points/sd0"), Clock.systemUTC());
            DrPoints.Pending left = sd0.prepare(q, "p-" + Instant.now().toEpochMilli(), Instant.now());
            com.fasterxml.jackson.databind.node.ArrayNode actions =
                    Json.mapper().createArrayNode();
            left.addActions(actions);
            com.fasterxml.jackson.databind.node.ObjectNode tx = QmpClient.args();
            tx.set("actions", actions);
            q.execute("transaction", tx);
        }
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p1.id());

        vm.write("sd0", 4L * MIB, 64 * 1024, 0x52);
        // (a copy still running is cancelled and that attempt retried, as the schedule retries it)
        DrVmPoints.Point[] taken = new DrVmPoints.Point[1];
        await().atMost(Duration.ofSeconds(60))
                .ignoreException(RetriableException.class)
                .until(() -> (taken[0] = points.take(protection.disks("vm1"))) != null);
        DrVmPoints.Point p2 = taken[0];
        assertThat(p2.disks().get("sd0").parent()).as("sd0 after leftovers").isEmpty();
        assertThat(p2.disks().get("sd1").parent()).as("sd1 had none").contains(p1.id());
        JsonNode record = Json.mapper()
                .readTree(dir.resolve("points/sd0/" + p2.id() + ".json").toFile());
        assertThat(record.path("why").asText()).startsWith("full: an interrupted point left");
        assertThat(bytes(p2)).isEqualTo(model());
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p1.id(), p2.id());
        try (var files = Files.list(dir.resolve("points/sd0"))) {
            assertThat(files.map(f -> f.getFileName().toString()).filter(n -> n.endsWith(".tmp")))
                    .isEmpty();
        }

        // a DR daemon down: retriable, naming its socket; nothing listed for it
        dr1.stop();
        assertThatThrownBy(() -> points.take(protection.disks("vm1")))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(dr1.qmpSocket().toString());
        assertThat(points.list()).extracting(DrVmPoints.Point::id).containsExactly(p1.id(), p2.id());
        assertThat(vm.qmp("query-status", null).path("running").asBoolean()).isTrue();
    }
}
