package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@link Drill}'s boot check: the tiny guest (real Linux under TCG with qemu-guest-agent) writes
 * a file on its ext4 data disk and is backed up by the real worker; the drill restores the point,
 * boots a throwaway guest from the same kernel directory on a copy-on-write overlay of the restored
 * disk, reaches its agent and sees the disk mounted with the file on it. Then the guest breaks its
 * own file system (an unknown incompatible feature bit in the superblock: the magic stays, so the
 * host would still call it ext4) and a second point is taken: the drill's guest cannot mount it and
 * the drill fails saying so.
 */
class DrillBootIT {

    private static final String VM = "tg";
    private static final Duration LONG = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    @Test
    void bootCheckReachesTheAgentAndSeesTheDiskMountedThenFailsOnAnUnmountableFileSystem() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("tg.yaml"),
                "name: tg\nvms: {names: [" + VM + "]}\nschedule: {interval: 1h}\nrpo: 1h\nrto: 30m\n");
        Path kernel = TinyGuest.build().get(0).getParent();
        List<String> started = new ArrayList<>();
        Drill drill = new Drill(Clock.systemUTC(), new RecoveryProgress() {
            @Override
            public void starting(String what) {
                started.add(what);
            }
        });
        Drill.Request request = request(VM, Drill.rtoLimit(new PolicyParser().loadDirectory(policies), VM), kernel);
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo")));
                TinyGuest guest = TinyGuest.boot(dir.resolve("g"), VM, 32L << 20)) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            guest.shOk("echo drill-me > /mnt/marker && sync", LONG);

            Manifest first = backUp(guest, repo, ConsistencyPolicy.APPLICATION_PREFERRED);
            Drill.DrillResult ok = drill.run(repo, new DrillLog(primary), request);
            assertThat(ok.record().restorePoint()).isEqualTo(first.id());
            assertThat(ok.record().check()).isEqualTo("boot");
            assertThat(ok.passed()).isTrue();
            String bootCheck = ok.boot().orElseThrow();
            assertThat(bootCheck).matches("boot: agent answered in \\d+\\.\\d s");
            assertThat(ok.record().detail())
                    .startsWith(bootCheck)
                    .contains("vd0: boot passed")
                    .contains("/dev/vda mounted on /mnt")
                    .contains("marker");
            // the measured RTO includes the boot: at least the time the agent took to answer
            double agentSeconds = Double.parseDouble(bootCheck.replaceAll(".* in ([0-9.]+) s", "$1"));
            assertThat(ok.record().rtoMillis() / 1000.0).isGreaterThanOrEqualTo(agentSeconds);
            assertThat(ok.rtoViolated()).isFalse();
            assertThat(started).singleElement().asString().startsWith("drill: booting the check guest from " + kernel);
            assertThat(leftovers())
                    .as("the drill's guest and scratch files are gone")
                    .isEmpty();

            guest.shOk("umount /mnt && printf '\\377' | dd of=/dev/vda bs=1 seek=1123 conv=notrunc && sync", LONG);
            Manifest second = backUp(guest, repo, ConsistencyPolicy.CRASH);
            Drill.DrillResult bad = drill.run(repo, new DrillLog(primary), request);
            assertThat(bad.record().restorePoint()).isEqualTo(second.id());
            assertThat(bad.passed()).isFalse();
            assertThat(bad.boot()).hasValueSatisfying(b -> assertThat(b).startsWith("boot: agent answered in"));
            assertThat(bad.record().detail())
                    .contains("vd0: boot FAILED")
                    .contains("/dev/vda not mounted")
                    .containsIgnoringCase("ext4");
            DrillRecord kept = new DrillLog(primary).latest(VM).orElseThrow();
            assertThat(kept.restorePoint()).isEqualTo(second.id());
            assertThat(kept.passed()).isFalse();
            assertThat(kept.detail()).contains("/dev/vda not mounted");
        }
    }

    /**
     * A point of two ext4 disks (made on the host, backed up from a QEMU without an OS, as in {@link
     * DrillIT}): the guest's init mounts the first on {@code /mnt}, the drill mounts the second
     * under {@code /run/check/} through guest-exec, and each disk's report lists its own files.
     */
    @Test
    void bootCheckMountsEveryDiskOfAPoint() throws Exception {
        String vm = "two-1";
        DrSite source = new DrSite(dir.resolve("src"));
        for (String d : List.of("sd0", "sd1")) {
            Path disk = source.disk(vm, d);
            Files.createDirectories(disk.getParent());
            DrillIT.run("truncate", "-s", "32M", disk.toString());
            DrillIT.run("mkfs.ext4", "-q", "-F", disk.toString());
            DrillIT.run("debugfs", "-w", "-R", "mkdir only-on-" + d, disk.toString());
        }
        RecoveryPlan.Vm spec = new RecoveryPlan.Vm(vm, 64, 1, List.of(), List.of());
        Path kernel = TinyGuest.build().get(0).getParent();
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo")))) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            Manifest point;
            source.start(spec, List.of("sd0", "sd1"));
            try {
                source.awaitRunning(vm, Duration.ofMinutes(2));
                try (QmpHypervisor hv = new QmpHypervisor(source.runDir());
                        BackupWorker worker = new BackupWorker(
                                "hv1",
                                hv,
                                repo,
                                new RecordingEventBus(),
                                Clock.systemUTC(),
                                dir.resolve("work"),
                                CaptureHooks.NONE,
                                NbdBlockSource::open)) {
                    point = worker.backup(
                            "two", new SnapshotJob(vm, "hv1", "two", Trigger.manual(), List.of(), Instant.now()));
                }
            } finally {
                source.stop(vm);
            }
            assertThat(point.disks()).hasSize(2);
            Drill.DrillResult ok = new Drill(Clock.systemUTC(), RecoveryProgress.NONE)
                    .run(repo, new DrillLog(primary), request(vm, Optional.empty(), kernel));
            assertThat(ok.passed()).isTrue();
            String detail = ok.record().detail();
            String first = point.disks().get(0).name();
            String second = point.disks().get(1).name();
            assertThat(detail)
                    .contains(first + ": boot passed\n/dev/vda mounted on /mnt\n. .. lost+found only-on-" + first)
                    .contains(second + ": boot passed\n/dev/vdb mounted on /run/check/vdb\n. .. lost+found only-on-"
                            + second);
        }
    }

    private Drill.Request request(String vm, Optional<Duration> rtoLimit, Path kernel) {
        return new Drill.Request(
                vm, "local", rtoLimit, dir.resolve("scratch"), 8, Optional.of(kernel), Duration.ofMinutes(10));
    }

    private List<Path> leftovers() throws Exception {
        try (Stream<Path> s = Files.list(dir.resolve("scratch"))) {
            return s.toList();
        }
    }

    private Manifest backUp(TinyGuest guest, Repository repo, ConsistencyPolicy consistency) {
        try (QmpHypervisor hv = new QmpHypervisor(guest.qmpSocket().getParent(), dir.resolve("state"));
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        repo,
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            return worker.backup(
                    "job-" + System.nanoTime(),
                    new SnapshotJob(
                            VM,
                            "hv1",
                            "tg",
                            Trigger.manual(),
                            List.of(),
                            Instant.now(),
                            Optional.of(consistency),
                            Optional.empty(),
                            OptionalLong.empty()));
        }
    }
}
