package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.RpoViolated;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ContinuousMirror} against a real QEMU 7.2 VM (TCG, writes through the guest device) and a
 * real DR site ({@code qemu-storage-daemon} serving a qcow2 replica over NBD). The replica is
 * checked by reading its export with {@code qemu-img}, against the fixture's own model of the
 * guest's disk: no Tidemark code reads either side.
 */
class ContinuousMirrorIT {

    private static final int MIB = 1 << 20;
    private static final long SIZE = 32L * MIB;

    @TempDir
    Path dir;

    private QemuVm vm;
    private DrNbdSite dr;
    private final List<ContinuousMirror> mirrors = new CopyOnWriteArrayList<>();
    private final List<MirrorState> seen = new CopyOnWriteArrayList<>();
    private final RecordingEventBus bus = new RecordingEventBus();
    private final MirrorLagWatch watch = new MirrorLagWatch(bus, Clock.systemUTC());

    @AfterEach
    void stopAll() {
        mirrors.forEach(ContinuousMirror::close);
        if (vm != null) {
            vm.close();
        }
        if (dr != null) {
            dr.close();
        }
    }

    private ContinuousMirror mirror(DrNbdTarget target) {
        ContinuousMirror m = new ContinuousMirror(
                "vm1",
                vm.qmpSocket(),
                "sd0",
                target,
                ContinuousMirror.DEFAULT_RECONNECT_DELAY,
                Clock.systemUTC(),
                ((java.util.function.Consumer<MirrorState>) seen::add)
                        .andThen(watch.listener("cdp", Duration.ofSeconds(1))));
        mirrors.add(m);
        return m;
    }

    private void start() {
        vm = QemuVm.start(dir, "vm1", SIZE);
        vm.write("sd0", 0, MIB, 0x11); // data written before protection starts
        dr = DrNbdSite.start(dir, "dr1", SIZE);
    }

    @Test
    void everyCompletedGuestWriteIsAtTheDrSiteWhenItCompletes() {
        start();
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> m.poll().inSync());

        for (int i = 0; i < 8; i++) {
            vm.write("sd0", (2L + 3 * i) * MIB + 4096L * i, 64 * 1024, 0x20 + i);
        }
        vm.write("sd0", 30L * MIB, 512, 0x7f);
        // no waiting: write-blocking acknowledged each write only once the DR site had it
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
        assertThat(m.poll().lag()).isZero();
    }

    @Test
    void aDrSiteOverTcpGetsEveryWriteAndSurvivesAnOutage() {
        vm = QemuVm.start(dir, "vm1", SIZE);
        vm.write("sd0", 0, MIB, 0x11);
        dr = DrNbdSite.startTcp(dir, "dr1", SIZE);
        assertThat(dr.uri()).startsWith("nbd://127.0.0.1:");
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.supervise(Duration.ofMillis(100));
        await().atMost(Duration.ofSeconds(60)).until(() -> m.state().inSync());
        vm.write("sd0", 3L * MIB, 64 * 1024, 0x31);
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());

        dr.stop();
        vm.write("sd0", 4L * MIB, 64 * 1024, 0x32);
        dr.restart();
        await().atMost(Duration.ofSeconds(90)).until(() -> m.state().inSync());
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aRestartedSupervisorAdoptsTheRunningMirror() {
        start();
        ContinuousMirror first = mirror(DrNbdTarget.parse(dr.uri()));
        first.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> first.poll().inSync());
        first.close();

        ContinuousMirror second = mirror(DrNbdTarget.parse(dr.uri()));
        second.start(); // would fail with "job id already in use" if it did not adopt
        assertThat(second.poll().phase()).isEqualTo(MirrorState.Phase.IN_SYNC);
        vm.write("sd0", 5L * MIB, 128 * 1024, 0x42);
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aDrLinkOutageIsResynchronisedFromTheDirtyBitmapAndTheLagRisesAndFalls() {
        start();
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.supervise(Duration.ofMillis(100));
        await().atMost(Duration.ofSeconds(60)).until(() -> m.state().inSync());

        dr.stop();
        // the first write waits up to reconnect-delay (1 s) for the link, then fails over to dirty tracking
        for (int i = 0; i < 4; i++) {
            vm.write("sd0", (8L + i) * MIB, 64 * 1024, 0x50 + i);
        }
        await().atMost(Duration.ofSeconds(30))
                .until(() -> m.state().phase() == MirrorState.Phase.OUTAGE
                        && m.state().lag().compareTo(Duration.ofMillis(500)) > 0);
        // only what changed is left to copy, not the disk
        assertThat(m.state().remainingBytes()).isBetween(1L, 4L * 64 * 1024);
        assertThat(dr.running()).isFalse();

        dr.restart();
        vm.write("sd0", 20L * MIB, 64 * 1024, 0x66);
        await().atMost(Duration.ofSeconds(90)).until(() -> m.state().inSync());
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
        assertThat(m.state().lag()).isZero();
        assertThat(seen).anyMatch(s -> s.lag().compareTo(Duration.ofMillis(500)) > 0);
        // the outage outlasted the 1 s RPO: one violation, and the metric is back to 0
        assertThat(bus.payloads(RpoViolated.class)).singleElement().satisfies(v -> assertThat(v.location())
                .isEqualTo(MirrorLagWatch.LOCATION));
        assertThat(watch.metrics()).contains("tidemark_mirror_lag_seconds{vm=\"vm1\",disk=\"sd0\"} 0.0");
    }

    @Test
    void pointsAtTheDrSiteRestoreToTheReplicaAsItWasWhenEachWasTaken() {
        start();
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> m.poll().inSync());
        DrPoints points = new DrPoints(dr.qmpSocket(), dr.replicaNode(), dir.resolve("points"), Clock.systemUTC());

        vm.write("sd0", 2L * MIB, 256 * 1024, 0x21);
        DrPoint full = points.take("vm1", m.poll());
        String atFull = vm.model("sd0").sha256();
        vm.write("sd0", 2L * MIB, 64 * 1024, 0x22);
        vm.write("sd0", 17L * MIB, 64 * 1024, 0x23);
        DrPoint incremental = points.take("vm1", m.poll());
        String atIncremental = vm.model("sd0").sha256();
        vm.write("sd0", 17L * MIB, 4096, 0x24); // after both points: only "now" (the replica) has it

        assertThat(full.parent()).isEmpty();
        assertThat(incremental.parent()).contains(full.id());
        assertThat(full.mirrorInSync()).isTrue();
        assertThat(full.mirrorLag()).isZero();
        assertThat(points.list()).extracting(DrPoint::id).containsExactly(full.id(), incremental.id());
        assertThat(flat(points, full)).isEqualTo(atFull);
        assertThat(flat(points, incremental)).isEqualTo(atIncremental);
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256()).isNotEqualTo(atIncremental);
    }

    /** SHA-256 of a point's bytes: restored to a qcow2, then read by qemu-img as raw. */
    private String flat(DrPoints points, DrPoint p) {
        Path restored = points.restore(p.id(), dir.resolve(p.id() + "-restored.qcow2"));
        Path raw = dir.resolve(p.id() + ".raw");
        io.tidemark.core.process.ExternalCommand.of(
                        "qemu-img", "convert", "-f", "qcow2", "-O", "raw", restored.toString(), raw.toString())
                .run();
        return DrNbdSite.sha256(raw);
    }

    @Test
    void aKilledDrDaemonLosesNoAcknowledgedWrite() {
        start();
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.supervise(Duration.ofMillis(100));
        await().atMost(Duration.ofSeconds(60)).until(() -> m.state().inSync());
        for (int i = 0; i < 16; i++) { // new clusters all over the disk: qcow2 metadata would change without prealloc
            vm.write("sd0", (long) i * 2 * MIB + 8192, 4096, 0x30 + i);
        }

        dr.kill();
        vm.write("sd0", 31L * MIB, 64 * 1024, 0x61); // during the outage: resynchronised later
        dr.relaunch();
        await().atMost(Duration.ofSeconds(90)).until(() -> m.state().inSync());
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aRestartedVmIsMirroredAgainFromScratch() {
        start();
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));
        m.start();
        await().atMost(Duration.ofSeconds(60)).until(() -> m.poll().inSync());

        vm.restart(); // QEMU lost the job and the DR node
        vm.write("sd0", 12L * MIB, 64 * 1024, 0x77);
        await().atMost(Duration.ofSeconds(60)).until(() -> m.poll().inSync());
        vm.write("sd0", 13L * MIB, 64 * 1024, 0x78);
        assertThat(dr.sha256()).isEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aDrTargetThatCannotBeReachedAtStartIsNamed() {
        vm = QemuVm.start(dir, "vm1", SIZE);
        DrNbdTarget nowhere = DrNbdTarget.unix(dir.resolve("nobody.nbd"), "dr1");
        ContinuousMirror m = mirror(nowhere);

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("DR target " + nowhere)
                .hasMessageContaining("cannot be reached")
                .hasMessageContaining("start the DR site's NBD server");
    }

    @Test
    void aReplicaOfAnotherSizeIsRefusedAtStart() {
        vm = QemuVm.start(dir, "vm1", SIZE);
        dr = DrNbdSite.start(dir, "dr1", SIZE / 2);
        ContinuousMirror m = mirror(DrNbdTarget.parse(dr.uri()));

        assertThatThrownBy(m::start)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("vm1/sd0")
                .hasMessageContaining("same size");
    }
}
