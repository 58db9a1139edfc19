package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.mirror.ContinuousMirror;
import io.tidemark.workers.mirror.ContinuousProtection;
import io.tidemark.workers.mirror.DrPoint;
import io.tidemark.workers.mirror.DrPoints;
import io.tidemark.workers.mirror.MirrorRecord;
import io.tidemark.workers.mirror.MirrorRecorder;
import io.tidemark.workers.mirror.MirrorState;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ContinuousFailover} on real parts: a real QEMU 7.2 VM (TCG, writes through the guest
 * device) mirrored by the real {@link ContinuousProtection} to a real {@code qemu-storage-daemon}
 * serving a raw replica, the real {@link MirrorRecorder} writing the mirror state record to a file
 * target, then the primary QEMU killed and the VM failed over into a real QEMU process at the DR
 * site. The DR disk is checked against the fixture's own model of the guest's disk (no Tidemark
 * code reads either side).
 */
class ContinuousFailoverIT {

    private static final int MIB = 1 << 20;
    private static final long SIZE = 32L * MIB;
    private static final Duration HEARTBEAT = Duration.ofMillis(500);
    private static final Duration RTO_LIMIT = Duration.ofMinutes(15);

    @TempDir
    Path dir;

    private QemuVm vm;
    private DrNbdSite dr;
    private ContinuousProtection protection;
    private MirrorRecorder recorder;
    private DrSite site;
    private ObjectTarget records;

    @AfterEach
    void stopAll() {
        if (recorder != null) {
            recorder.close();
        }
        if (protection != null) {
            protection.close();
        }
        if (vm != null) {
            vm.close();
        }
        if (site != null) {
            site.stop("vm1");
        }
        if (dr != null) {
            dr.close();
        }
        if (records != null) {
            records.close();
        }
    }

    /** The primary: a VM with data, mirrored to the DR daemon, its state recorded every 500 ms. */
    private void protectVm() {
        vm = QemuVm.start(dir, "vm1", SIZE);
        vm.write("sd0", 0, MIB, 0x11);
        dr = DrNbdSite.start(dir, "vm1-sd0", SIZE);
        protection = new ContinuousProtection(
                new RecordingEventBus(),
                Clock.systemUTC(),
                Duration.ofMillis(100),
                ContinuousMirror.DEFAULT_RECONNECT_DELAY);
        protection.protect(
                new ContinuousProtection.Protected("vm1", vm.qmpSocket(), "cdp", Duration.ofSeconds(1), dr.uri()));
        try {
            records = new FileObjectTarget(java.nio.file.Files.createDirectories(dir.resolve("records")));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        recorder = new MirrorRecorder(
                protection::status,
                v -> Optional.of(new MirrorRecorder.Destination("cdp", List.of(records))),
                Clock.systemUTC(),
                HEARTBEAT);
        Instant begun = Instant.now();
        recorder.start();
        await().atMost(Duration.ofSeconds(90)).until(() -> recorded(MirrorState.Phase.IN_SYNC, begun));
    }

    /** True once a record written after {@code after} shows every disk in {@code phase}. */
    private boolean recorded(MirrorState.Phase phase, Instant after) {
        return MirrorRecord.newest(records, "vm1")
                .filter(r -> r.writtenAt().isAfter(after))
                .filter(r -> r.disks().stream().allMatch(d -> d.phase() == phase))
                .isPresent();
    }

    /** The primary site is lost: its QEMU is killed, and its engine (supervisors, recorder) with it. */
    private Instant losePrimary() {
        vm.kill();
        Instant lost = Instant.now();
        recorder.close();
        protection.close();
        return lost;
    }

    private RecoveryPlan.Group group(boolean withPoints) {
        return group(withPoints, List.of());
    }

    private RecoveryPlan.Group group(boolean withPoints, List<String> qemuArgs) {
        RecoveryPlan.ReplicaDisk disk = new RecoveryPlan.ReplicaDisk(
                dr.image(),
                Optional.of(dr.qmpSocket()),
                withPoints ? Optional.of(dir.resolve("points")) : Optional.empty());
        RecoveryPlan.Vm spec = new RecoveryPlan.Vm(
                "vm1",
                128,
                1,
                qemuArgs,
                List.of(),
                EnumSet.noneOf(RecoveryPlan.Setting.class),
                Optional.of(new RecoveryPlan.Continuous(Map.of("sd0", disk))));
        return new RecoveryPlan.Group("data", List.of(spec));
    }

    private ContinuousFailover.VmResult failOver(RecoveryPlan.Group group, ContinuousFailover.Choice choice) {
        return failOver(group, choice, records);
    }

    private ContinuousFailover.VmResult failOver(
            RecoveryPlan.Group group, ContinuousFailover.Choice choice, ObjectTarget recordsAt) {
        site = new DrSite(dir.resolve("w"), RecoveryPlan.Accel.TCG);
        ContinuousFailover failover = new ContinuousFailover(Optional.of(recordsAt), site, site, Clock.systemUTC());
        List<ContinuousFailover.VmResult> out =
                failover.run(group, choice, Optional.empty(), System.nanoTime(), Instant.now());
        assertThat(out).hasSize(1);
        ContinuousFailover.VmResult r = out.get(0);
        log.info(
                "failover of vm1 ({}, {}): state {}, RTO {} ms, RPO {} ({})",
                r.source(),
                r.pointByDisk(),
                r.state().label(),
                r.timing().map(t -> t.rto().toMillis()).orElse(-1L),
                r.rpo().map(AchievedRpo::label).orElse("-"),
                r.rpo().map(AchievedRpo::note).orElse(""));
        return r;
    }

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(ContinuousFailoverIT.class);

    @Test
    void withoutAMirrorStateRecordTheFailoverRunsAndSaysTheRpoIsUnknownNotZero() {
        protectVm();
        vm.write("sd0", 2L * MIB, 64 * 1024, 0x61);
        String acknowledged = vm.model("sd0").sha256();
        losePrimary();

        ContinuousFailover.VmResult r = failOver(
                group(false), new ContinuousFailover.Choice.Now(), new io.tidemark.testkit.InMemoryObjectTarget());

        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
        assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(acknowledged);
        assertThat(r.rpo().orElseThrow().rpo()).isEmpty();
        assertThat(r.rpo().orElseThrow().label()).isEqualTo("unknown");
        assertThat(r.rpo().orElseThrow().note()).contains("no mirror state record");
    }

    @Test
    void anInSyncVmFailsOverToItsReplicaWithEveryAcknowledgedWriteAndRpoZero() {
        protectVm();
        for (int i = 0; i < 6; i++) {
            vm.write("sd0", (2L + 3 * i) * MIB + 4096L * i, 64 * 1024, 0x20 + i);
        }
        String acknowledged = vm.model("sd0").sha256();
        Instant afterWrites = Instant.now();
        await().atMost(Duration.ofSeconds(30)).until(() -> recorded(MirrorState.Phase.IN_SYNC, afterWrites));
        losePrimary();

        ContinuousFailover.VmResult r = failOver(group(false), new ContinuousFailover.Choice.Now());

        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
        assertThat(site.status("vm1")).contains("running");
        assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(acknowledged);
        AchievedRpo rpo = r.rpo().orElseThrow();
        assertThat(rpo.rpo()).contains(Duration.ZERO);
        assertThat(rpo.upperBound()).isFalse();
        assertThat(r.timing().orElseThrow().rto()).isPositive().isLessThan(RTO_LIMIT);
        // the export is gone: nothing can write the replica after the cut
        assertThat(dr.qmp("query-block-exports", QemuVm.args())).isEmpty();

        // day two: a re-run starts nothing twice
        ContinuousFailover.VmResult again = failOver(group(false), new ContinuousFailover.Choice.Now());
        assertThat(again.state()).isEqualTo(Failover.State.ALREADY_RUNNING);
        assertThat(again.timing()).isEmpty();
    }

    @Test
    void aVmWhoseDrLinkBrokeBeforeThePrimaryDiedBootsTheWritesUpToTheBreakAndReportsTheLossWindow() {
        protectVm();
        vm.write("sd0", 2L * MIB, 64 * 1024, 0x31);
        String atBreak = vm.model("sd0").sha256();
        Instant t0 = Instant.now();
        dr.stop(); // the DR link breaks; the guest goes on writing at local speed
        for (int i = 0; i < 4; i++) {
            vm.write("sd0", (8L + i) * MIB, 64 * 1024, 0x50 + i);
        }
        await().atMost(Duration.ofSeconds(30)).until(() -> recorded(MirrorState.Phase.OUTAGE, t0));
        vm.write("sd0", 20L * MIB, 4096, 0x5f);
        Instant lastLostWrite = Instant.now();
        Instant lost = losePrimary();
        dr.restart(); // the DR site's daemon serves the replica again (the primary is gone)

        ContinuousFailover.VmResult r = failOver(group(false), new ContinuousFailover.Choice.Now());

        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
        assertThat(site.status("vm1")).contains("running");
        assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(atBreak);
        AchievedRpo rpo = r.rpo().orElseThrow();
        Duration trueWindow = Duration.between(t0, lastLostWrite);
        log.info(
                "link broke {} ms before the last lost write, {} ms before the primary was killed; reported RPO {}",
                trueWindow.toMillis(),
                Duration.between(t0, lost).toMillis(),
                rpo.label());
        assertThat(rpo.upperBound()).isTrue();
        assertThat(rpo.rpo().orElseThrow())
                .isGreaterThanOrEqualTo(trueWindow)
                .isLessThanOrEqualTo(Duration.between(t0, lost)
                        .plus(HEARTBEAT.multipliedBy(2))
                        .plusSeconds(2));
        assertThat(rpo.dataAsOf().orElseThrow()).isBeforeOrEqualTo(t0);
        assertThat(r.timing().orElseThrow().rto()).isLessThan(RTO_LIMIT);
    }

    @Test
    void anEarlierPointFailoverBootsOnThePointsBytes() {
        protectVm();
        vm.write("sd0", 2L * MIB, 64 * 1024, 0x41);
        String atPoint = vm.model("sd0").sha256();
        DrPoints points = new DrPoints(dr.qmpSocket(), dr.replicaNode(), dir.resolve("points"), Clock.systemUTC());
        await().atMost(Duration.ofSeconds(30))
                .until(() -> protection.status().stream().allMatch(MirrorState::inSync));
        DrPoint p = points.take("vm1", protection.status().get(0));
        Instant afterPoint = Instant.now();
        vm.write("sd0", 9L * MIB, 64 * 1024, 0x42); // after the point: left behind by choice
        assertThat(vm.model("sd0").sha256()).isNotEqualTo(atPoint);
        losePrimary();

        ContinuousFailover.VmResult r = failOver(group(true), new ContinuousFailover.Choice.At(afterPoint));

        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
        assertThat(r.pointByDisk()).containsEntry("sd0", p.id());
        assertThat(site.status("vm1")).contains("running");
        assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(atPoint);
        assertThat(r.rpo().orElseThrow().dataAsOf()).contains(p.createdAt());
    }

    @Test
    void aRerunAfterAFailoverThatStoppedHalfWayStartsTheVmOnceOnTheSameBytes() {
        protectVm();
        vm.write("sd0", 2L * MIB, 64 * 1024, 0x71);
        String acknowledged = vm.model("sd0").sha256();
        Instant afterWrites = Instant.now();
        await().atMost(Duration.ofSeconds(30)).until(() -> recorded(MirrorState.Phase.IN_SYNC, afterWrites));
        losePrimary();

        // the first attempt releases the replica and links it, then QEMU refuses the plan's arguments
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> failOver(group(false, List.of("-no-such-option")), new ContinuousFailover.Choice.Now()))
                .isInstanceOf(io.tidemark.core.PermanentException.class)
                .hasMessageContaining("did not start");
        assertThat(dr.qmp("query-block-exports", QemuVm.args())).isEmpty();
        assertThat(site.status("vm1")).isEmpty();

        ContinuousFailover.VmResult r = failOver(group(false), new ContinuousFailover.Choice.Now());

        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
        assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(acknowledged);
        assertThat(r.rpo().orElseThrow().rpo()).contains(Duration.ZERO);
        assertThat(failOver(group(false), new ContinuousFailover.Choice.Now()).state())
                .isEqualTo(Failover.State.ALREADY_RUNNING);
    }
}
