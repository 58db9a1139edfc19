package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.recovery.DiskCheck;
import io.tidemark.recovery.DrSite;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpClient;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-group DR plan failed over from an S3 target (S3Proxy) into real QEMU processes, and one VM
 * failed back home. The source VMs are real QEMU VMs (no OS) backed up by the real worker; the DR
 * VMs are started by the command under test. Checks: --dry-run touches nothing; the restored disks
 * equal the chosen points (consistent-with picks the older common firing); the second group starts
 * only after the first runs; a re-run restarts nothing; failback ships only the changed chunk and
 * the home copy equals the DR disk.
 */
class DrFailoverIT {

    private static final long DISK = 32L << 20;
    private static final List<String> VMS = List.of("db-1", "queue-1", "web-1");

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void failsOverInBootOrderFromConsistentPointsAndFailsBackOnlyTheChanges() throws Exception {
        Path drDir = dir.resolve("dr");
        DrSite site = new DrSite(drDir);
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("drsite");
            Path config = engineConfig(s3);
            Map<String, String> expectedSha = new HashMap<>();
            Map<String, String> expectedPoint = new HashMap<>();
            backUpSources(config, expectedSha, expectedPoint);
            std.reset();
            Path plan = dir.resolve("plan.yaml");
            Files.writeString(
                    plan,
                    """
                    site: dr-test
                    source: offsite
                    work-dir: %s
                    home-dir: %s
                    groups:
                      - name: data
                        vms:
                          - {name: db-1, memory: 64}
                          - {name: queue-1, memory: 64, consistent-with: [db-1]}
                      - name: apps
                        vms:
                          - {name: web-1, memory: 64}
                    """
                            .formatted(drDir, dir.resolve("home")));
            try {
                // --dry-run: says what it would do, touches nothing
                assertThat(Main.execute(
                                "dr",
                                "failover",
                                "--config",
                                config.toString(),
                                "--plan",
                                plan.toString(),
                                "--dry-run",
                                "--json"))
                        .as(std.err())
                        .isZero();
                JsonNode dry = json(std.out());
                assertThat(dry.path("ok").asBoolean()).isTrue();
                assertThat(dry.path("vms"))
                        .extracting(vm -> vm.path("vm").asText())
                        .containsExactlyInAnyOrderElementsOf(VMS);
                for (JsonNode vm : dry.path("vms")) {
                    assertThat(vm.path("restorePoint").asText())
                            .isEqualTo(expectedPoint.get(vm.path("vm").asText()));
                }
                assertThat(drDir).doesNotExist();
                assertThat(qemuProcessesUnder(drDir)).isEmpty();

                // failover
                std.reset();
                assertThat(Main.execute(
                                "dr", "failover", "--config", config.toString(), "--plan", plan.toString(), "--json"))
                        .as(std.err())
                        .isZero();
                JsonNode out = json(std.out());
                Map<String, JsonNode> byVm = new HashMap<>();
                out.path("vms").forEach(v -> byVm.put(v.path("vm").asText(), v));
                assertThat(byVm).containsOnlyKeys(VMS);
                for (String vm : VMS) {
                    JsonNode r = byVm.get(vm);
                    assertThat(r.path("state").asText()).isEqualTo("started");
                    assertThat(r.path("restorePoint").asText()).isEqualTo(expectedPoint.get(vm));
                    assertThat(r.path("rpoSeconds").asDouble()).isPositive();
                    assertThat(r.path("rtoSeconds").asDouble()).isPositive();
                    assertThat(site.status(vm)).contains("running");
                    assertThat(Restorer.sha256(site.disk(vm, "sd0")))
                            .as("DR disk of %s equals its point", vm)
                            .isEqualTo(expectedSha.get(vm));
                }
                Instant groupOneRunning = max(
                        Instant.parse(byVm.get("db-1").path("runningAt").asText()),
                        Instant.parse(byVm.get("queue-1").path("runningAt").asText()));
                Instant webLaunched =
                        Instant.parse(byVm.get("web-1").path("launchedAt").asText());
                assertThat(webLaunched).isAfterOrEqualTo(groupOneRunning);
                // and by the processes themselves: web-1's QEMU started after both of the first group
                Instant webProcess = processStart("web-1", site);
                assertThat(webProcess).isAfterOrEqualTo(processStart("db-1", site));
                assertThat(webProcess).isAfterOrEqualTo(processStart("queue-1", site));
                assertThat(byVm.get("web-1").path("rtoSeconds").asDouble())
                        .isGreaterThanOrEqualTo(
                                byVm.get("db-1").path("rtoSeconds").asDouble());

                // a re-run reports the running VMs and restarts nothing
                Map<String, Long> pids = new HashMap<>();
                VMS.forEach(vm -> pids.put(vm, site.pid(vm).orElseThrow()));
                std.reset();
                assertThat(Main.execute("dr", "failover", "--config", config.toString(), "--plan", plan.toString()))
                        .as(std.err())
                        .isZero();
                assertThat(std.out()).contains("already-running");
                VMS.forEach(vm -> assertThat(site.pid(vm)).contains(pids.get(vm)));

                // the DR site writes a little; failback ships about that much and home equals the DR disk
                try (QmpClient qmp = QmpClient.connect(site.qmp("db-1"))) {
                    qmp.execute(
                            "human-monitor-command",
                            QmpClient.args().put("command-line", "qemu-io -d sd0 \"write -P 0x5a 8M 64k\""));
                }
                String drSha = Restorer.sha256(site.disk("db-1", "sd0"));
                assertThat(drSha).isNotEqualTo(expectedSha.get("db-1"));
                std.reset();
                assertThat(Main.execute(
                                "dr",
                                "failback",
                                "--config",
                                config.toString(),
                                "--plan",
                                plan.toString(),
                                "--vm",
                                "db-1",
                                "--json"))
                        .as(std.err())
                        .isZero();
                JsonNode back = json(std.out()).get(0);
                long chunk = RepositoryConfig.defaults().chunkSize();
                assertThat(back.path("sizeBytes").asLong()).isEqualTo(DISK);
                // the whole disk is read (holes of the sparse raw file are skipped as zeros)
                assertThat(back.path("bytesRead").asLong())
                        .isGreaterThanOrEqualTo(back.path("bytesShipped").asLong());
                assertThat(back.path("bytesShipped").asLong())
                        .as("only the chunk written at the DR site is new")
                        .isPositive()
                        .isLessThanOrEqualTo(chunk);
                Path home = dir.resolve("home").resolve("db-1").resolve("sd0.raw");
                assertThat(Restorer.sha256(home)).isEqualTo(drSha);
                try (ObjectTarget target =
                        EngineConfig.load(config).targets().get("offsite").open("offsite")) {
                    Manifest m = Repository.open(target)
                            .manifest("db-1", back.path("restorePoint").asText())
                            .orElseThrow();
                    assertThat(m.trigger().kind()).isEqualTo(TriggerKind.FAILBACK);
                    assertThat(m.trigger().attributes()).containsEntry("site", "dr-test");
                }

                // a drill from the same S3 target: not an ext file system, so the chunk digests are checked
                std.reset();
                assertThat(Main.execute(
                                "drill",
                                "--config",
                                config.toString(),
                                "--target",
                                "offsite",
                                "--vm",
                                "web-1",
                                "--scratch",
                                dir.resolve("scratch").toString(),
                                "--json"))
                        .as(std.err())
                        .isZero();
                JsonNode drill = json(std.out());
                assertThat(drill.path("restorePoint").asText()).isEqualTo(expectedPoint.get("web-1"));
                assertThat(drill.path("location").asText()).isEqualTo("offsite");
                assertThat(drill.path("check").asText()).isEqualTo(DiskCheck.DIGESTS);
                assertThat(drill.path("passed").asBoolean()).isTrue();
            } finally {
                VMS.forEach(site::stop);
            }
            assertThat(qemuProcessesUnder(drDir)).isEmpty();
        }
    }

    /**
     * Firing 1 of every VM, then firing 2 of db-1 and web-1 only (queue-1's has not arrived): db-1
     * and queue-1 must come back from firing 1, web-1 from firing 2.
     */
    private void backUpSources(Path config, Map<String, String> sha, Map<String, String> point) {
        Path qmpDir = dir.resolve("qmp");
        Instant f1 = Instant.parse("2026-01-01T00:00:00Z");
        Instant f2 = f1.plusSeconds(900);
        try (ObjectTarget target =
                        EngineConfig.load(config).targets().get("offsite").open("offsite");
                QemuVm db = QemuVm.start(Files.createDirectories(qmpDir), "db-1", DISK);
                QemuVm queue = QemuVm.start(qmpDir, "queue-1", DISK);
                QemuVm web = QemuVm.start(qmpDir, "web-1", DISK);
                QmpHypervisor hv = new QmpHypervisor(qmpDir);
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        Repository.openOrInit(target, RepositoryConfig.defaults()),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            db.write("sd0", 0, 1 << 20, 0x11);
            queue.write("sd0", 1 << 20, 1 << 20, 0x22);
            web.write("sd0", 2 << 20, 1 << 20, 0x33);
            for (QemuVm vm : List.of(db, queue, web)) {
                Manifest m = backup(worker, vm.name(), f1);
                sha.put(vm.name(), vm.model("sd0").sha256());
                point.put(vm.name(), m.id());
            }
            db.write("sd0", 4 << 20, 1 << 20, 0x44);
            web.write("sd0", 4 << 20, 1 << 20, 0x55);
            backup(worker, "db-1", f2); // newer, but queue-1 has no point of this firing
            Manifest w = backup(worker, "web-1", f2);
            sha.put("web-1", web.model("sd0").sha256());
            point.put("web-1", w.id());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Manifest backup(BackupWorker worker, String vm, Instant firing) {
        return worker.backup(
                "p/" + vm + "/" + firing.toEpochMilli(),
                new SnapshotJob(vm, "hv1", "p", Trigger.schedule("p"), List.of(), firing));
    }

    private Path engineConfig(EmbeddedS3 s3) throws Exception {
        Path secrets = Files.createDirectories(dir.resolve("secrets"));
        Files.writeString(secrets.resolve("access"), s3.accessKey());
        Files.writeString(secrets.resolve("secret"), s3.secretKey());
        Path config = dir.resolve("engine.yaml");
        Files.writeString(
                config,
                """
                data: %s
                policies: %s
                targets:
                  offsite:
                    type: s3
                    endpoint: %s
                    region: us-east-1
                    bucket: drsite
                    prefix: tm
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 30s
                """
                        .formatted(
                                dir.resolve("data"),
                                dir.resolve("policies"),
                                s3.endpoint(),
                                secrets.resolve("access"),
                                secrets.resolve("secret")));
        return config;
    }

    /** The command's JSON; the test log configuration also writes log lines to stdout. */
    static JsonNode json(String out) throws java.io.IOException {
        String text = out.lines()
                .filter(l -> !l.matches("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} .*"))
                .collect(java.util.stream.Collectors.joining("\n"));
        return Json.mapper().readTree(text);
    }

    private static Instant processStart(String vm, DrSite site) {
        return ProcessHandle.of(site.pid(vm).orElseThrow())
                .orElseThrow()
                .info()
                .startInstant()
                .orElseThrow();
    }

    private static Instant max(Instant a, Instant b) {
        return a.isAfter(b) ? a : b;
    }

    private static List<ProcessHandle> qemuProcessesUnder(Path dir) {
        String d = dir.toAbsolutePath().toString();
        return ProcessHandle.allProcesses()
                .filter(p -> p.info()
                        .commandLine()
                        .map(c -> c.contains(DrSite.QEMU) && c.contains(d))
                        .orElse(false))
                .toList();
    }
}
