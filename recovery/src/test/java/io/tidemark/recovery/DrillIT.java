package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

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
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM whose disk holds a real ext4 file system runs in QEMU and is backed up by the real worker;
 * the {@link Drill} restores it in isolation and passes e2fsck. Then the file system is corrupted
 * (root inode cleared), a second point is taken, and the drill fails with e2fsck's report. The
 * newest result is kept on the repository. (How status and /metrics show it: the CLI's tests.)
 */
class DrillIT {

    private static final String VM = "fs-1";

    @TempDir
    Path dir;

    @Test
    void drillPassesOnACleanFileSystemAndFailsWithTheE2fsckReportOnACorruptOne() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("fs.yaml"),
                "name: fs\nvms: {names: [" + VM + "]}\nschedule: {interval: 1h}\nrpo: 1h\nrto: 10m\n");
        DrSite source = new DrSite(dir.resolve("src"));
        Path disk = source.disk(VM, "sd0");
        Files.createDirectories(disk.getParent());
        run("truncate", "-s", "32M", disk.toString());
        run("mkfs.ext4", "-q", "-F", disk.toString());
        run("debugfs", "-w", "-R", "mkdir /app", disk.toString());
        RecoveryPlan.Vm spec = new RecoveryPlan.Vm(VM, 64, 1, List.of(), List.of());
        Drill.Request request = new Drill.Request(
                VM,
                "local",
                Drill.rtoLimit(new PolicyParser().loadDirectory(policies), VM),
                dir.resolve("scratch"),
                8,
                Optional.empty(),
                Duration.ofMinutes(5));
        Drill drill = new Drill(Clock.systemUTC(), RecoveryProgress.NONE);
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo")))) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            try {
                Manifest first = backUp(source, spec, repo);

                Drill.DrillResult ok = drill.run(repo, new DrillLog(primary), request);
                assertThat(ok.record().restorePoint()).isEqualTo(first.id());
                assertThat(ok.record().check()).isEqualTo("e2fsck");
                assertThat(ok.passed()).isTrue();
                assertThat(ok.record().rtoLimit()).contains(Duration.ofMinutes(10));
                assertThat(ok.record().rtoMillis()).isPositive();
                assertThat(ok.rtoViolated()).isFalse();
                assertThat(ok.boot()).isEmpty();
                assertThat(leftovers()).as("the scratch copy is gone").isEmpty();

                run("debugfs", "-w", "-R", "clri <2>", disk.toString()); // the root directory's inode
                Manifest second = backUp(source, spec, repo);
                Drill.DrillResult bad = drill.run(repo, new DrillLog(primary), request);
                assertThat(bad.record().restorePoint()).isEqualTo(second.id());
                assertThat(bad.passed()).isFalse();
                assertThat(bad.record().detail())
                        .contains("sd0: e2fsck FAILED")
                        .contains("Root inode is not a directory");

                // the newest result is kept on the repository
                DrillRecord kept = new DrillLog(primary).latest(VM).orElseThrow();
                assertThat(kept.restorePoint()).isEqualTo(second.id());
                assertThat(kept.passed()).isFalse();
                assertThat(kept).isEqualTo(bad.record());
            } finally {
                source.stop(VM);
            }
        }
    }

    /** Runs the VM on its disk in QEMU, backs it up through QMP and NBD, and stops it again. */
    private Manifest backUp(DrSite source, RecoveryPlan.Vm spec, Repository repo) {
        source.start(spec, List.of("sd0"));
        source.awaitRunning(VM, Duration.ofMinutes(2));
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
            return worker.backup(
                    "manual/" + System.nanoTime(),
                    new SnapshotJob(
                            VM,
                            "hv1",
                            "fs",
                            Trigger.manual(),
                            List.of(),
                            Clock.systemUTC().instant()));
        } finally {
            source.stop(VM);
        }
    }

    private List<Path> leftovers() throws Exception {
        try (Stream<Path> s = Files.list(dir.resolve("scratch"))) {
            return s.toList();
        }
    }

    static void run(String... cmd) throws Exception {
        List<String> command = new java.util.ArrayList<>(List.of(cmd));
        for (String sbin : List.of("/usr/sbin/", "/sbin/")) {
            if (!DrChecks.onPath(cmd[0]) && Files.isExecutable(Path.of(sbin + cmd[0]))) {
                command.set(0, sbin + cmd[0]);
            }
        }
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(2, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(String.join(" ", cmd) + ": " + out).isZero();
    }
}
