package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.JobHistory;
import io.tidemark.engine.JobRuns;
import io.tidemark.format.Json;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.DemoGuest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * "Back up this VM now" and the job history on real parts: the CLI signs a backup request, the
 * engine's hook endpoint publishes one manual job over the embedded Kafka broker, the worker
 * captures the running QEMU VM and commits a restore point tagged with the request id; the same
 * request id again publishes no second job. {@code tidemark jobs} shows the job from the history the
 * engine wrote, also after the engine restarted on its data, and {@code tidemark show} the point.
 */
class BackupNowIT {

    private static final String VM = "db-vm";
    private static final long DISK = 16L << 20;

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void aBackupNowCommitsATaggedPointOnceAndTheHistoryKeepsItAcrossARestart() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path data = dir.resolve("data");
        String pointId;
        try (QemuVm vm = QemuVm.start(qmpDir, VM, DISK)) {
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK), 13);
            guest.write(disk, 1 << 20, 1 << 20, 0x3c);
            Path policies = Files.createDirectories(dir.resolve("policies"));
            Files.writeString(
                    policies.resolve("db.yaml"),
                    """
                    name: db
                    vms: {names: [%s]}
                    schedule: {interval: 1h}
                    rpo: 2h
                    """
                            .formatted(VM));
            Path hookSecret = dir.resolve("hook.secret");
            Files.writeString(hookSecret, "a-long-enough-shared-hook-secret");
            Path configFile = dir.resolve("tidemark.yaml");
            Files.writeString(
                    configFile,
                    """
                    host: hv1
                    data: %s
                    qmpDir: %s
                    policies: %s
                    hooks:
                      address: 127.0.0.1:0
                      secretFile: %s
                    """
                            .formatted(data, qmpDir, policies, hookSecret));

            try (Engine engine = Engine.start(EngineConfig.load(configFile), guest, Clock.systemUTC())) {
                // every job published for the VM, in order (one partition per key)
                List<String> published = new CopyOnWriteArrayList<>();
                EventBus.Subscription jobs = engine.bus()
                        .subscribe("it-job-watch", List.of(Topics.jobs("hv1")), (t, e) -> {
                            if (e.payload() instanceof SnapshotJob) {
                                published.add(e.jobId());
                            }
                        });
                try {
                    String url = "http://127.0.0.1:" + engine.hookPort().orElseThrow();
                    String[] backup = {
                        "backup",
                        "--vm",
                        VM,
                        "--wait",
                        "committed",
                        "--request-id",
                        "change-4711",
                        "--timeout",
                        "3m",
                        "--url",
                        url,
                        "--secret-file",
                        hookSecret.toString()
                    };
                    Run first = run(backup);
                    assertThat(first.exit()).as(first.err()).isZero();
                    List<Manifest> manual = manualPoints(engine);
                    assertThat(manual).singleElement().satisfies(m -> {
                        assertThat(m.trigger().attributes()).containsEntry("requestId", "change-4711");
                        assertThat(m.jobId()).isEqualTo("manual/change-4711/" + VM);
                    });
                    pointId = manual.get(0).id();
                    assertThat(first.out()).contains(pointId);

                    // the same request again (a retried step): the same point, and no second job published
                    Run again = run(backup);
                    assertThat(again.exit()).as(again.err()).isZero();
                    assertThat(again.out()).contains(pointId);
                    backup[6] = "change-4712"; // published after the repeat, on the same partition
                    Run next = run(backup);
                    assertThat(next.exit()).as(next.err()).isZero();
                    await().atMost(Duration.ofSeconds(60)).until(() -> published.contains("manual/change-4712/" + VM));
                    assertThat(published)
                            .filteredOn(id -> id.startsWith("manual/change-4711/"))
                            .hasSize(1);
                    assertThat(manualPoints(engine)).hasSize(2);

                    // an unknown VM: refused, naming the VMs the engine knows
                    Run unknown = run("backup", "--vm", "nope", "--url", url, "--secret-file", hookSecret.toString());
                    assertThat(unknown.exit()).isEqualTo(Main.EXIT_PERMANENT);
                    assertThat(unknown.err()).contains("no VM 'nope'").contains("it knows " + VM);
                } finally {
                    jobs.close();
                }
                awaitCommittedInHistory(data, "manual/change-4712/" + VM);
            }

            // the engine restarts on its data: the history is still there and goes on
            try (Engine engine = Engine.start(EngineConfig.load(configFile), guest, Clock.systemUTC())) {
                String url = "http://127.0.0.1:" + engine.hookPort().orElseThrow();
                Run third = run(
                        "backup",
                        "--vm",
                        VM,
                        "--wait",
                        "committed",
                        "--request-id",
                        "change-4713",
                        "--timeout",
                        "3m",
                        "--url",
                        url,
                        "--secret-file",
                        hookSecret.toString());
                assertThat(third.exit()).as(third.err()).isZero();
                awaitCommittedInHistory(data, "manual/change-4713/" + VM);
            }
        }

        Run jobs = run("jobs", "--data", data.toString(), "--vm", VM, "--json");
        assertThat(jobs.exit()).as(jobs.err()).isZero();
        JsonNode rows = Json.mapper().readTree(jobs.out());
        List<String> manual = rows.findValuesAsText("jobId").stream()
                .filter(id -> id.startsWith("manual/"))
                .toList();
        assertThat(manual)
                .containsExactly("manual/change-4711/" + VM, "manual/change-4712/" + VM, "manual/change-4713/" + VM);
        JsonNode first = rows.get(rows.findValuesAsText("jobId").indexOf("manual/change-4711/" + VM));
        assertThat(first.path("state").asText()).isEqualTo("committed");
        assertThat(first.path("restorePointId").asText()).isEqualTo(pointId);
        assertThat(first.path("trigger").path("attributes").path("requestId").asText())
                .isEqualTo("change-4711");
        assertThat(first.path("durationMs").asLong()).isPositive();
        assertThat(first.path("bytesRead").asLong()).isPositive();

        Run table = run("jobs", "--data", data.toString());
        assertThat(table.out()).contains("manual change-4711").contains(pointId);

        Run show = run("show", pointId, "--data", data.toString());
        assertThat(show.exit()).as(show.err()).isZero();
        assertThat(show.out())
                .contains("trigger        manual requestId=change-4711")
                .containsPattern("local +holds it");
    }

    private static void awaitCommittedInHistory(Path data, String jobId) {
        await().atMost(Duration.ofSeconds(60))
                .until(() -> JobRuns.of(
                                JobHistory.read(JobHistory.directory(data)).events())
                        .stream()
                        .anyMatch(r -> r.jobId().equals(jobId) && r.state() == JobRuns.State.COMMITTED));
    }

    private static List<Manifest> manualPoints(Engine engine) {
        return engine.repository().manifests(VM).stream()
                .filter(m -> m.trigger().is(TriggerKind.MANUAL))
                .toList();
    }

    private record Run(int exit, String out, String err) {}

    private Run run(String... args) {
        std.reset();
        int exit = Main.execute(args);
        return new Run(exit, std.out(), std.err());
    }
}
