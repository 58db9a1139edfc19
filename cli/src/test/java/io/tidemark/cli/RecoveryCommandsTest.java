package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.engine.DrillResults;
import io.tidemark.engine.MetricsServer;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicyParser;
import io.tidemark.recovery.DiskCheck;
import io.tidemark.recovery.Failback;
import io.tidemark.recovery.Failover;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The recovery commands as the operator sees them — exit codes, text and JSON — over points
 * committed straight into a file repository (no QEMU). What the use cases do is tested in recovery/
 * (DrFailoverIT, DrillIT, DrillBootIT, and the *Test there).
 */
class RecoveryCommandsTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void aDryRunPrintsThePlanAsJsonAndTextExitsZeroAndWritesNothing() throws Exception {
        Path offsite = Files.createDirectories(dir.resolve("offsite"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(offsite), RepositoryConfig.defaults());
        Map<String, Manifest> points =
                Map.of("db-1", point(repo, "db-1", T0), "web-1", point(repo, "web-1", T0.plusSeconds(60)));
        Path config = config(offsite);
        Path drDir = dir.resolve("dr");
        Path plan = plan(drDir);

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
        assertThat(dry.path("dryRun").asBoolean()).isTrue();
        assertThat(dry.path("site").asText()).isEqualTo("dr-test");
        assertThat(dry.path("source").asText()).isEqualTo("offsite");
        assertThat(dry.path("vms"))
                .extracting(
                        vm -> vm.path("vm").asText() + "/" + vm.path("group").asText() + "/"
                                + vm.path("restorePoint").asText() + "/"
                                + vm.path("alreadyRunning").asBoolean())
                .containsExactly(
                        "db-1/data/" + points.get("db-1").id() + "/false",
                        "web-1/apps/" + points.get("web-1").id() + "/false");
        assertThat(dry.path("vms").get(0).path("disks").get(0).asText())
                .isEqualTo(drDir.resolve("db-1/sd0.raw").toString());
        assertThat(drDir).doesNotExist();

        std.reset();
        assertThat(Main.execute(
                        "dr", "failover", "--config", config.toString(), "--plan", plan.toString(), "--dry-run"))
                .as(std.err())
                .isZero();
        assertThat(std.out())
                .contains("dry run of plan " + plan)
                .contains("group data:\n  db-1: restore point "
                        + points.get("db-1").id())
                .contains("group apps:\n  web-1: restore point "
                        + points.get("web-1").id())
                .contains("to " + drDir.resolve("web-1") + ", QEMU -m 64 -smp 1")
                .contains("the plan can be carried out; nothing was changed");
        assertThat(drDir).doesNotExist();
    }

    @Test
    void aDryRunThatFindsAProblemPrintsItAndExitsTwo() throws Exception {
        Path offsite = Files.createDirectories(dir.resolve("offsite"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(offsite), RepositoryConfig.defaults());
        point(repo, "db-1", T0);
        point(repo, "web-1", T0);
        Path notADir = Files.writeString(dir.resolve("a-file"), "x");
        Path plan = plan(notADir.resolve("dr"));

        assertThat(Main.execute(
                        "dr",
                        "failover",
                        "--config",
                        config(offsite).toString(),
                        "--plan",
                        plan.toString(),
                        "--dry-run"))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.out())
                .contains("PROBLEM: " + notADir + " is not a directory")
                .contains("the plan cannot be carried out as it is; nothing was changed");
    }

    @Test
    void aFailoverResultRendersStateRpoRtoAndTimesOnlyForVmsItStarted() {
        Manifest m = manifest("db-1", T0, "idx");
        Instant launched = T0.plusSeconds(3600);
        Failover.VmResult started = new Failover.VmResult(
                "db-1",
                "data",
                m,
                Failover.State.STARTED,
                Optional.of(new Failover.Timing(
                        Duration.ofMillis(3_600_500), Duration.ofMillis(12_300), launched, launched.plusSeconds(2))),
                List.of(dir.resolve("dr/db-1/sd0.raw")),
                List.of());
        Failover.VmResult running = new Failover.VmResult(
                "db-1", "data", m, Failover.State.ALREADY_RUNNING, Optional.empty(), List.of(), List.of());

        ObjectNode a = Json.mapper().createObjectNode();
        FailoverCommand.toJson(started, a);
        assertThat(a.path("state").asText()).isEqualTo("started");
        assertThat(a.path("restorePoint").asText()).isEqualTo(m.id());
        assertThat(a.path("rpoSeconds").asDouble()).isEqualTo(3600.5);
        assertThat(a.path("rtoSeconds").asDouble()).isEqualTo(12.3);
        assertThat(a.path("launchedAt").asText()).isEqualTo(launched.toString());
        assertThat(a.path("runningAt").asText())
                .isEqualTo(launched.plusSeconds(2).toString());
        assertThat(a.path("disks").get(0).asText())
                .isEqualTo(dir.resolve("dr/db-1/sd0.raw").toString());

        ObjectNode b = Json.mapper().createObjectNode();
        FailoverCommand.toJson(running, b);
        assertThat(b.path("state").asText()).isEqualTo("already-running");
        assertThat(b.has("rpoSeconds")).isFalse();
        assertThat(b.has("runningAt")).isFalse();
    }

    @Test
    void aFailbackResultRendersWhatWasReadShippedAndRestored() {
        Manifest m = manifest("db-1", T0, "idx");
        Failback.VmResult r = new Failback.VmResult(
                "db-1",
                m,
                List.of(new Restorer.Result("/home/db-1/sd0.raw", "raw", 4096, 4096, 1, "ab12")),
                dir.resolve("home/db-1"),
                Duration.ofMillis(1500));
        ObjectNode o = Json.mapper().createObjectNode();
        FailbackCommand.toJson(r, o);
        assertThat(o.path("vm").asText()).isEqualTo("db-1");
        assertThat(o.path("restorePoint").asText()).isEqualTo(m.id());
        assertThat(o.path("sizeBytes").asLong()).isEqualTo(m.sizeBytes());
        assertThat(o.path("bytesRead").asLong()).isEqualTo(m.bytesRead());
        assertThat(o.path("bytesShipped").asLong()).isEqualTo(m.bytesNew());
        assertThat(o.path("seconds").asDouble()).isEqualTo(1.5);
        assertThat(o.path("disks").get(0).path("image").asText()).isEqualTo("/home/db-1/sd0.raw");
        assertThat(o.path("disks").get(0).path("sha256").asText()).isEqualTo("ab12");
    }

    @Test
    void aDrillPrintsItsResultAsJsonAndTextWithThePolicysRto() throws Exception {
        Path data = dir.resolve("data");
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(data.resolve("repo"))), RepositoryConfig.defaults());
        Manifest m = point(repo, "fs-1", T0);
        Path policies = policies("fs-1");
        String[] drill = {
            "drill",
            "--data",
            data.toString(),
            "--policies",
            policies.toString(),
            "--vm",
            "fs-1",
            "--scratch",
            dir.resolve("scratch").toString(),
            "--json"
        };

        assertThat(Main.execute(drill)).as(std.err()).isZero();
        JsonNode ok = json(std.out());
        assertThat(ok.path("restorePoint").asText()).isEqualTo(m.id());
        assertThat(ok.path("location").asText()).isEqualTo("local");
        assertThat(ok.path("check").asText()).isEqualTo(DiskCheck.DIGESTS);
        assertThat(ok.path("passed").asBoolean()).isTrue();
        assertThat(ok.path("rtoLimitSeconds").asLong()).isEqualTo(600);
        assertThat(ok.path("rtoSeconds").asDouble()).isPositive();
        assertThat(ok.path("rtoViolated").asBoolean()).isFalse();
        assertThat(ok.path("bootCheck").asText()).isEqualTo("boot: not run (no --boot kernel directory)");

        std.reset();
        assertThat(Main.execute(Arrays.copyOf(drill, drill.length - 1)))
                .as(std.err())
                .isZero();
        assertThat(std.out())
                .contains("drill of fs-1 from local: restore point " + m.id())
                .contains("sd0: chunk-digests passed")
                .contains("boot: not run (no --boot kernel directory)")
                .containsPattern("RTO measured \\d+\\.\\ds, policy 10m")
                .contains("drill PASSED");
    }

    @Test
    void aFailedDrillRendersItsDetailAndStatusAndMetricsShowIt() throws Exception {
        Path data = dir.resolve("data");
        FileObjectTarget primary = new FileObjectTarget(Files.createDirectories(data.resolve("repo")));
        Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
        Manifest m = point(repo, "fs-1", Instant.now().minusSeconds(60));
        Path policies = policies("fs-1");
        DrillRecord kept = new DrillRecord(
                "fs-1",
                RpoTracker.LOCAL,
                m.id(),
                m.capturedAt(),
                Instant.now(),
                1234,
                600_000L,
                "e2fsck",
                false,
                "sd0: e2fsck FAILED\nRoot inode is not a directory");
        new DrillLog(primary).record(kept);

        JsonNode bad = DrillCommand.toJson(kept, Optional.empty());
        assertThat(bad.path("restorePoint").asText()).isEqualTo(m.id());
        assertThat(bad.path("passed").asBoolean()).isFalse();
        assertThat(bad.path("detail").asText())
                .contains("sd0: e2fsck FAILED")
                .contains("Root inode is not a directory");

        assertThat(Main.execute("status", "--data", data.toString(), "--policies", policies.toString(), "--json"))
                .as(std.err())
                .isZero();
        JsonNode local = null;
        for (JsonNode s : json(std.out())) {
            if (s.path("vm").asText().equals("fs-1")
                    && s.path("location").asText().equals(RpoTracker.LOCAL)) {
                local = s;
            }
        }
        assertThat(local).isNotNull();
        assertThat(local.path("lastDrill").path("passed").asBoolean()).isFalse();
        assertThat(local.path("lastDrill").path("rtoSeconds").asDouble()).isEqualTo(kept.rtoMillis() / 1000.0);
        assertThat(local.path("lastDrill").path("rtoLimitSeconds").asLong()).isEqualTo(600);
        std.reset();
        assertThat(Main.execute("status", "--data", data.toString(), "--policies", policies.toString()))
                .isZero();
        assertThat(std.out()).contains("LAST DRILL").contains("FAILED");

        InMemoryInventory inventory = new InMemoryInventory();
        inventory.put("fs-1", "-", Map.of());
        RpoTracker tracker = new RpoTracker(new PolicyParser().loadDirectory(policies), inventory, Clock.systemUTC());
        try (MetricsServer metrics = new MetricsServer(
                new InetSocketAddress("127.0.0.1", 0),
                tracker,
                DrillResults.cached(primary, Map.of(), Clock.systemUTC(), Duration.ofSeconds(30)))) {
            String body = HttpClient.newHttpClient()
                    .send(
                            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metrics.port() + "/metrics"))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString())
                    .body();
            String labels = "{vm=\"fs-1\",location=\"local\"}";
            assertThat(body)
                    .contains("tidemark_rto_seconds" + labels + " " + kept.rtoMillis() / 1000.0 + "\n")
                    .contains("tidemark_rto_limit_seconds" + labels + " 600\n")
                    .contains("tidemark_drill_passed" + labels + " 0\n");
        }
    }

    private Path policies(String vm) throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("fs.yaml"),
                "name: fs\nvms: {names: [" + vm + "]}\nschedule: {interval: 1h}\nrpo: 1h\nrto: 10m\n");
        return policies;
    }

    private Path config(Path offsite) throws Exception {
        return Files.writeString(
                dir.resolve("engine.yaml"),
                "data: %s\npolicies: %s\ntargets:\n  offsite: {type: file, path: %s}\n"
                        .formatted(dir.resolve("data"), dir.resolve("policies"), offsite));
    }

    private Path plan(Path workDir) throws Exception {
        return Files.writeString(
                dir.resolve("plan.yaml"),
                """
                site: dr-test
                source: offsite
                work-dir: %s
                groups:
                  - name: data
                    vms:
                      - {name: db-1, memory: 64}
                  - name: apps
                    vms:
                      - {name: web-1, memory: 64}
                """
                        .formatted(workDir));
    }

    /** A point of {@code vm}: one 2-chunk disk {@code sd0}, its first chunk holding data. */
    private static Manifest point(Repository repo, String vm, Instant at) {
        int chunk = repo.config().chunkSize();
        var index = repo.newIndex(2L * chunk, Optional.empty());
        byte[] data = new byte[chunk];
        Arrays.fill(data, (byte) 0x5a);
        index.set(0, repo.putChunk(data, chunk).digest());
        index.set(1, repo.putChunk(new byte[chunk], chunk).digest());
        Manifest m = manifest(vm, at, index.finish().hex(), 2L * chunk, chunk);
        repo.commit(m);
        return m;
    }

    private static Manifest manifest(String vm, Instant at, String index) {
        return manifest(vm, at, index, 4L << 20, 1 << 20);
    }

    private static Manifest manifest(String vm, Instant at, String index, long size, int chunk) {
        return new Manifest(
                1,
                String.format("%013d-%s", at.toEpochMilli(), vm),
                vm,
                "hv1",
                "p/" + vm + "/" + at.toEpochMilli(),
                at,
                at.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.schedule("p"),
                "p",
                Optional.empty(),
                List.of(new DiskEntry("sd0", size, chunk, index, "tm-x", Optional.empty(), size, size / 2)));
    }

    /** The command's JSON; the test log configuration also writes log lines to stdout. */
    static JsonNode json(String out) throws java.io.IOException {
        String text = out.lines()
                .filter(l -> !l.matches("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} .*"))
                .collect(Collectors.joining("\n"));
        return Json.mapper().readTree(text);
    }
}
