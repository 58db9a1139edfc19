package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real engine (embedded KRaft Kafka, no VMs) with a file target and an S3 target that does not
 * answer (nothing listens on its port), scraped by a real Zabbix 6.0 server through the template of
 * deploy/monitoring/zabbix: deploy/monitoring/zabbix/prove-import.sh starts a throwaway Zabbix
 * (PostgreSQL, zabbix_server, the PHP frontend; installed by deploy/install-deps.sh), imports the
 * template through the API, adds a host for the engine's /metrics and waits.
 *
 * <p>Asserts: the engine's /metrics serves the new families (build info, component readiness, JVM)
 * beside the old ones; the import succeeds; plain and discovered items (targets, roles, capacity
 * budgets) get values from the engine; the "target does not answer" trigger of the down target
 * fires, and so does the "over its capacity budget" trigger of a VM whose one restore point (committed
 * into the primary repository before the start) exceeds its policy's local budget (the engine
 * measures budgets after 1 s instead of a minute). 100–150 s.
 */
class ZabbixTemplateIT {

    @TempDir
    Path dir;

    @Test
    void theTemplateImportsScrapesARunningEngineAndFiresTheTargetDownTrigger() throws Exception {
        Path config = config();
        BudgetWatchIT.commitFullPoint(dir.resolve("data"), "app-vm", "app", 2, new java.util.Random(6));
        try (Engine engine = Engine.start(
                EngineConfig.load(config),
                io.tidemark.workers.CaptureHooks.NONE,
                Clock.systemUTC(),
                new Engine.BudgetChecks(Duration.ofSeconds(1), Duration.ofSeconds(5)))) {
            int port = engine.metricsPort().orElseThrow();
            HttpClient http = HttpClient.newHttpClient();
            HttpRequest scrape = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                    .timeout(Duration.ofSeconds(5))
                    .build();
            await().atMost(Duration.ofSeconds(60)).until(() -> http.send(scrape, HttpResponse.BodyHandlers.ofString())
                    .body()
                    .contains("tidemark_target_up{target=\"s3\"} 0")); // sampled once probed
            await().atMost(Duration.ofSeconds(60)).until(() -> http.send(scrape, HttpResponse.BodyHandlers.ofString())
                    .body()
                    .contains("tidemark_target_up{target=\"vault\"}"));
            assertThat(http.send(scrape, HttpResponse.BodyHandlers.ofString()).body())
                    .contains("tidemark_target_up{target=\"vault\"} 1")
                    .contains("tidemark_component_ready{component=\"worker\"} 1")
                    .contains("tidemark_build_info{")
                    .contains("jvm_memory_used_bytes{area=\"heap\"")
                    .contains("tidemark_replication_missing_points{target=\"s3\"}");
            await().atMost(Duration.ofSeconds(60)).until(() -> http.send(scrape, HttpResponse.BodyHandlers.ofString())
                    .body()
                    .contains("tidemark_budget_used_bytes{vm=\"app-vm\",location=\"local\",policy=\"app\"}"));

            Path script = MonitoringAsCodeTest.monitoring().resolve("zabbix/prove-import.sh");
            Process p = new ProcessBuilder(
                            "bash",
                            script.toString(),
                            "http://127.0.0.1:" + port,
                            "--expect-trigger",
                            "replication target s3 does not answer",
                            "--expect-trigger",
                            "app-vm at local is over its capacity budget",
                            // discovery rules run one after the other: wait for the ones asserted below
                            "--expect-item",
                            "tidemark.target.up[s3]",
                            "--expect-item",
                            "tidemark.target.up[vault]",
                            "--expect-item",
                            "tidemark.component.ready[worker]",
                            "--expect-item",
                            "tidemark.budget.used[app-vm,local]",
                            "--expect-item",
                            "tidemark.budget.bytes[app-vm,local]",
                            "--timeout",
                            "120")
                    .redirectErrorStream(true)
                    .start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(5, TimeUnit.MINUTES)).isTrue();

            assertThat(p.exitValue()).as(out).isZero();
            assertThat(out)
                    .contains("imported template: 11 items, 6 discovery rules")
                    .containsPattern("items have values: \\d+ plain, \\d+ discovered")
                    .contains("tidemark.target.up[s3]=0")
                    .contains("tidemark.target.up[vault]=1")
                    .contains("tidemark.component.ready[worker]=1")
                    .contains("tidemark.budget.bytes[app-vm,local]=65536")
                    .containsPattern("tidemark\\.budget\\.used\\[app-vm,local]=\\d{6,}")
                    .contains("unsupported items: none")
                    .contains("trigger fired: ['Tidemark: replication target s3 does not answer']")
                    .contains("trigger fired: ['Tidemark: app-vm at local is over its capacity budget']")
                    .contains("PROVED");
        }
    }

    private static int closedPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort(); // closed again: nothing listens there
        }
    }

    private Path config() throws IOException {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("app.yaml"),
                """
                name: app
                vms: {names: [app-vm]}
                schedule: {interval: 1h}
                rpo: 1h
                targets: [s3, vault]
                budget: {local: 64KiB}
                """);
        Path secrets = Files.createDirectories(dir.resolve("secrets"));
        Files.writeString(secrets.resolve("s3.access"), "access");
        Files.writeString(secrets.resolve("s3.secret"), "secret");
        Path configFile = dir.resolve("tidemark.yaml");
        Files.writeString(
                configFile,
                """
                host: hv1
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                targets:
                  s3:
                    type: s3
                    endpoint: http://127.0.0.1:%d
                    region: us-east-1
                    bucket: offsite
                    prefix: tm
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 2s
                  vault:
                    type: file
                    path: %s
                """
                        .formatted(
                                dir.resolve("data"),
                                qmpDir,
                                policies,
                                closedPort(),
                                secrets.resolve("s3.access"),
                                secrets.resolve("s3.secret"),
                                Files.createDirectories(dir.resolve("vault"))));
        return configFile;
    }
}
