package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.DrillResults;
import io.tidemark.engine.MetricsServer;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.recovery.DrChecks;
import io.tidemark.recovery.DrSite;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM whose disk holds a real ext4 file system runs in QEMU and is backed up by the real worker;
 * {@code tidemark drill} restores it in isolation and passes e2fsck. Then the file system is
 * corrupted (root inode cleared), a second point is taken, and the drill fails with e2fsck's
 * report. The newest result is on the repository and shows in {@code status} and {@code /metrics}.
 */
class DrillIT {

    private static final String VM = "fs-1";

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void drillPassesOnACleanFileSystemAndFailsWithTheE2fsckReportOnACorruptOne() throws Exception {
        Path data = dir.resolve("data");
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
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(data.resolve("repo")))) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            try {
                Manifest first = backUp(source, spec, repo);

                assertThat(Main.execute(drill(data, policies))).as(std.err()).isZero();
                JsonNode ok = DrFailoverIT.json(std.out());
                assertThat(ok.path("restorePoint").asText()).isEqualTo(first.id());
                assertThat(ok.path("check").asText()).isEqualTo("e2fsck");
                assertThat(ok.path("passed").asBoolean()).isTrue();
                assertThat(ok.path("rtoLimitSeconds").asLong()).isEqualTo(600);
                assertThat(ok.path("rtoSeconds").asDouble()).isPositive();
                assertThat(ok.path("rtoViolated").asBoolean()).isFalse();

                run("debugfs", "-w", "-R", "clri <2>", disk.toString()); // the root directory's inode
                Manifest second = backUp(source, spec, repo);
                std.reset();
                assertThat(Main.execute(drill(data, policies))).isEqualTo(Main.EXIT_PERMANENT);
                JsonNode bad = DrFailoverIT.json(std.out());
                assertThat(bad.path("restorePoint").asText()).isEqualTo(second.id());
                assertThat(bad.path("passed").asBoolean()).isFalse();
                assertThat(bad.path("detail").asText())
                        .contains("sd0: e2fsck FAILED")
                        .contains("Root inode is not a directory");

                // the newest result is kept on the repository, and status and /metrics show it
                DrillRecord kept = new DrillLog(primary).latest(VM).orElseThrow();
                assertThat(kept.restorePoint()).isEqualTo(second.id());
                assertThat(kept.passed()).isFalse();
                std.reset();
                assertThat(Main.execute(
                                "status", "--data", data.toString(), "--policies", policies.toString(), "--json"))
                        .as(std.err())
                        .isZero();
                JsonNode status = DrFailoverIT.json(std.out());
                JsonNode local = null;
                for (JsonNode s : status) {
                    if (s.path("vm").asText().equals(VM)
                            && s.path("location").asText().equals(RpoTracker.LOCAL)) {
                        local = s;
                    }
                }
                assertThat(local).isNotNull();
                assertThat(local.path("lastDrill").path("passed").asBoolean()).isFalse();
                assertThat(local.path("lastDrill").path("rtoSeconds").asDouble())
                        .isEqualTo(kept.rtoMillis() / 1000.0);
                assertThat(local.path("lastDrill").path("rtoLimitSeconds").asLong())
                        .isEqualTo(600);
                std.reset();
                assertThat(Main.execute("status", "--data", data.toString(), "--policies", policies.toString()))
                        .isZero();
                assertThat(std.out()).contains("LAST DRILL").contains("FAILED");

                InMemoryInventory inventory = new InMemoryInventory();
                inventory.put(VM, "-", Map.of());
                RpoTracker tracker =
                        new RpoTracker(new PolicyParser().loadDirectory(policies), inventory, Clock.systemUTC());
                try (MetricsServer metrics = new MetricsServer(
                        new InetSocketAddress("127.0.0.1", 0),
                        tracker,
                        DrillResults.cached(primary, Map.of(), Clock.systemUTC(), Duration.ofSeconds(30)))) {
                    String body = HttpClient.newHttpClient()
                            .send(
                                    HttpRequest.newBuilder(
                                                    URI.create("http://127.0.0.1:" + metrics.port() + "/metrics"))
                                            .build(),
                                    HttpResponse.BodyHandlers.ofString())
                            .body();
                    String labels = "{vm=\"" + VM + "\",location=\"local\"}";
                    assertThat(body)
                            .contains("tidemark_rto_seconds" + labels + " " + kept.rtoMillis() / 1000.0 + "\n")
                            .contains("tidemark_rto_limit_seconds" + labels + " 600\n")
                            .contains("tidemark_drill_passed" + labels + " 0\n");
                }
            } finally {
                source.stop(VM);
            }
        }
    }

    private String[] drill(Path data, Path policies) {
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
            "--json"
        };
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
}
