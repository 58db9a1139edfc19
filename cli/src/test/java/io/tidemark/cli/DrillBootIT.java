package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.recovery.DrChecks;
import io.tidemark.recovery.DrSite;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
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
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tidemark drill --boot}: the tiny guest (real Linux under TCG with qemu-guest-agent) writes
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

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void bootCheckReachesTheAgentAndSeesTheDiskMountedThenFailsOnAnUnmountableFileSystem() throws Exception {
        Path data = dir.resolve("data");
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("tg.yaml"),
                "name: tg\nvms: {names: [" + VM + "]}\nschedule: {interval: 1h}\nrpo: 1h\nrto: 30m\n");
        Path kernel = TinyGuest.build().get(0).getParent();
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(data.resolve("repo")));
                TinyGuest guest = TinyGuest.boot(dir.resolve("g"), VM, 32L << 20)) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            guest.shOk("echo drill-me > /mnt/marker && sync", LONG);

            Manifest first = backUp(guest, repo, ConsistencyPolicy.APPLICATION_PREFERRED);
            assertThat(Main.execute(drill(data, policies, kernel)))
                    .as(std.err())
                    .isZero();
            JsonNode ok = DrFailoverIT.json(std.out());
            assertThat(ok.path("restorePoint").asText()).isEqualTo(first.id());
            assertThat(ok.path("check").asText()).isEqualTo("boot");
            assertThat(ok.path("passed").asBoolean()).isTrue();
            assertThat(ok.path("bootCheck").asText()).matches("boot: agent answered in \\d+\\.\\d s");
            assertThat(ok.path("detail").asText())
                    .startsWith(ok.path("bootCheck").asText())
                    .contains("vd0: boot passed")
                    .contains("/dev/vda mounted on /mnt")
                    .contains("marker");
            // the measured RTO includes the boot: at least the time the agent took to answer
            double agentSeconds =
                    Double.parseDouble(ok.path("bootCheck").asText().replaceAll(".* in ([0-9.]+) s", "$1"));
            assertThat(ok.path("rtoSeconds").asDouble()).isGreaterThanOrEqualTo(agentSeconds);
            assertThat(ok.path("rtoViolated").asBoolean()).isFalse();
            assertThat(leftovers())
                    .as("the drill's guest and scratch files are gone")
                    .isEmpty();

            guest.shOk("umount /mnt && printf '\\377' | dd of=/dev/vda bs=1 seek=1123 conv=notrunc && sync", LONG);
            Manifest second = backUp(guest, repo, ConsistencyPolicy.CRASH);
            std.reset();
            assertThat(Main.execute(drill(data, policies, kernel))).isEqualTo(Main.EXIT_PERMANENT);
            JsonNode bad = DrFailoverIT.json(std.out());
            assertThat(bad.path("restorePoint").asText()).isEqualTo(second.id());
            assertThat(bad.path("passed").asBoolean()).isFalse();
            assertThat(bad.path("bootCheck").asText()).startsWith("boot: agent answered in");
            assertThat(bad.path("detail").asText())
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
        Path data = dir.resolve("data");
        DrSite source = new DrSite(dir.resolve("src"));
        for (String d : List.of("sd0", "sd1")) {
            Path disk = source.disk(vm, d);
            Files.createDirectories(disk.getParent());
            run("truncate", "-s", "32M", disk.toString());
            run("mkfs.ext4", "-q", "-F", disk.toString());
            run("debugfs", "-w", "-R", "mkdir only-on-" + d, disk.toString());
        }
        RecoveryPlan.Vm spec = new RecoveryPlan.Vm(vm, 64, 1, List.of(), List.of());
        Path kernel = TinyGuest.build().get(0).getParent();
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(data.resolve("repo")))) {
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
            String[] args = drill(data, dir.resolve("no-policies"), kernel);
            args[6] = vm;
            assertThat(Main.execute(args)).as(std.err()).isZero();
            JsonNode ok = DrFailoverIT.json(std.out());
            assertThat(ok.path("passed").asBoolean()).isTrue();
            String detail = ok.path("detail").asText();
            String first = point.disks().get(0).name();
            String second = point.disks().get(1).name();
            assertThat(detail)
                    .contains(first + ": boot passed\n/dev/vda mounted on /mnt\n. .. lost+found only-on-" + first)
                    .contains(second + ": boot passed\n/dev/vdb mounted on /run/check/vdb\n. .. lost+found only-on-"
                            + second);
        }
    }

    private static void run(String... cmd) throws Exception {
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

    private List<Path> leftovers() throws Exception {
        Path scratch = dir.resolve("scratch");
        try (Stream<Path> s = Files.list(scratch)) {
            return s.toList();
        }
    }

    private String[] drill(Path data, Path policies, Path kernel) {
        return new String[] {
            "drill",
            "--data",
            data.toString(),
            "--policies",
            policies.toString(),
            "--vm",
            VM,
            "--scratch",
            dir.resolve("scratch").toString(),
            "--boot",
            kernel.toString(),
            "--boot-timeout",
            "PT10M",
            "--json"
        };
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
