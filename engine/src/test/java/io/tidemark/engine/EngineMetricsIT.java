package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.CaptureHooks;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real engine (embedded KRaft Kafka, one QEMU VM under TCG, a file target) backing the VM up every
 * 10 s. Asserts that /metrics tells the story of its jobs: started, succeeded, their durations, the
 * capture's duration, bytes read and stored for the VM, the point committed and bytes shipped to the
 * target, the scheduler's firing lag and the worker's consumer lag — all from the real worker,
 * replicator and scheduler through the engine's wiring.
 */
class EngineMetricsIT {

    private static final String VM = "metrics-vm";

    @TempDir
    Path dir;

    private static double sample(String text, String series) {
        Matcher m =
                Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    @Test
    void aRunningEngineCountsItsJobsBytesCapturesAndReplicas() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("app.yaml"),
                """
                name: app
                vms: {names: [%s]}
                schedule: {interval: 10s}
                rpo: 1h
                targets: [vault]
                """
                        .formatted(VM));
        Path configFile = dir.resolve("tidemark.yaml");
        Files.writeString(
                configFile,
                """
                host: hv-metrics
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                targets:
                  vault:
                    type: file
                    path: %s
                """
                        .formatted(
                                dir.resolve("data"), qmpDir, policies, Files.createDirectories(dir.resolve("vault"))));

        try (QemuVm vm = QemuVm.start(qmpDir, VM, 16L << 20)) {
            vm.write(vm.diskIds().get(0), 0, 2 << 20, 0x5a); // data to read: a zero disk reads nothing
            try (Engine engine = Engine.start(EngineConfig.load(configFile), CaptureHooks.NONE, Clock.systemUTC())) {
                scrapeAndCheck(engine);
            }
        }
    }

    private void scrapeAndCheck(Engine engine) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest scrape = HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/metrics"))
                .timeout(Duration.ofSeconds(5))
                .build();
        String[] text = {""};
        await().atMost(Duration.ofSeconds(240))
                .pollInterval(Duration.ofSeconds(1))
                .until(() -> {
                    text[0] = http.send(scrape, HttpResponse.BodyHandlers.ofString())
                            .body();
                    return sample(text[0], "tidemark_replicas_committed_total{target=\"vault\",vm=\"" + VM + "\"}")
                            >= 1;
                });
        String t = text[0];
        String pv = "{policy=\"app\",vm=\"" + VM + "\"}";

        assertThat(sample(t, "tidemark_jobs_started_total" + pv)).isGreaterThanOrEqualTo(1);
        assertThat(sample(t, "tidemark_jobs_succeeded_total" + pv)).isGreaterThanOrEqualTo(1);
        assertThat(sample(t, "tidemark_job_duration_seconds_count{outcome=\"succeeded\",policy=\"app\"}"))
                .isGreaterThanOrEqualTo(1);
        assertThat(sample(t, "tidemark_capture_duration_seconds_count{vm=\"" + VM + "\"}"))
                .isGreaterThanOrEqualTo(1);
        assertThat(sample(t, "tidemark_backup_read_bytes_total{vm=\"" + VM + "\"}"))
                .isPositive();
        assertThat(sample(t, "tidemark_backup_stored_bytes_total{vm=\"" + VM + "\"}"))
                .isPositive();
        assertThat(sample(t, "tidemark_replication_shipped_bytes_total{target=\"vault\",vm=\"" + VM + "\"}"))
                .isPositive();
        assertThat(sample(t, "tidemark_replication_duration_seconds_count{outcome=\"shipped\",target=\"vault\"}"))
                .isGreaterThanOrEqualTo(1);
        assertThat(sample(t, "tidemark_scheduler_firing_lag_seconds_count")).isGreaterThanOrEqualTo(1);
        assertThat(t)
                .containsPattern("(?m)^tidemark_bus_consumer_lag_events\\{group=\"tidemark-worker-hv-metrics\","
                        + "role=\"worker\"} \\d")
                .contains("tidemark_rpo_seconds{vm=\"" + VM + "\",location=\"local\",policy=\"app\"}");
    }
}
