package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.format.Json;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.CaptureHooks;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real engine (embedded KRaft Kafka, two QEMU VMs under TCG, a file target) with its status page
 * on, rendered by headless Chromium (Debian's {@code chromium}; deploy/install-deps.sh installs it).
 * VM {@code web-vm} is backed up and replicated; VM {@code db-vm}'s policy requires application
 * consistency, which a guest without an agent cannot give, so its jobs fail with a reason. The DOM
 * Chromium renders shows both, and without the token it shows neither. The screenshot is written to
 * {@code target/status-page.png} (or where {@code -Dstatuspage.screenshot} says: docs/images/ holds
 * the one the docs show).
 */
class StatusPageIT {

    private static final String TOKEN = "status-page-it-token-0123456789abcdef";

    @TempDir
    Path dir;

    @Test
    void chromiumRendersTheVmsPointsAndFailureReasonsOfARealEngine() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"),
                """
                name: web
                vms: {names: [web-vm]}
                schedule: {interval: 10s}
                rpo: 1h
                targets: [vault]
                """);
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-vm]}
                schedule: {interval: 10s}
                consistency: application-required
                rpo: 1h
                """);
        Path tokenFile = Files.writeString(dir.resolve("status.token"), TOKEN + "\n");
        Path configFile = Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                host: hv-status
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                statusPage:
                  tokenFile: %s
                targets:
                  vault:
                    type: file
                    path: %s
                """
                        .formatted(
                                dir.resolve("data"),
                                qmpDir,
                                policies,
                                tokenFile,
                                Files.createDirectories(dir.resolve("vault"))));

        try (QemuVm web = QemuVm.start(qmpDir, "web-vm", 16L << 20);
                QemuVm db = QemuVm.start(qmpDir, "db-vm", 16L << 20)) {
            web.write(web.diskIds().get(0), 0, 1 << 20, 0x5a);
            try (Engine engine = Engine.start(EngineConfig.load(configFile), CaptureHooks.NONE, Clock.systemUTC())) {
                String base = "http://127.0.0.1:" + engine.metricsPort().orElseThrow();
                JsonNode status = awaitPointAndFailure(base);
                String point =
                        vm(status, "web-vm").path("points").get(0).path("id").asText();

                String dom = chromium("--dump-dom", base + "/status?token=" + TOKEN);
                assertThat(dom)
                        .contains("data-vm=\"web-vm\"")
                        .contains("data-vm=\"db-vm\"")
                        .contains(point)
                        .contains("consistency_not_met")
                        .contains("requires application consistency")
                        .contains("vault");

                String refused = chromium("--dump-dom", base + "/status");
                assertThat(refused).contains("<form").doesNotContain("web-vm").doesNotContain("db-vm");

                Path shot = Path.of(System.getProperty("statuspage.screenshot", "target/status-page.png"))
                        .toAbsolutePath();
                Files.createDirectories(shot.getParent());
                Files.deleteIfExists(shot);
                // on a loaded host the shot may come before every tile is rasterised (cut off at 768 px):
                // let the compositor finish each frame before it is drawn
                chromium(
                        "--screenshot=" + shot,
                        "--window-size=1280,900",
                        "--hide-scrollbars",
                        "--run-all-compositor-stages-before-draw",
                        "--virtual-time-budget=3000",
                        base + "/status?token=" + TOKEN);
                assertThat(shot).isNotEmptyFile();
            }
        }
    }

    /** Polls /status.json (bearer) until web-vm has a point and db-vm a failure. */
    private static JsonNode awaitPointAndFailure(String base) {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/status.json"))
                .header("Authorization", "Bearer " + TOKEN)
                .timeout(Duration.ofSeconds(5))
                .build();
        JsonNode[] last = {null};
        await().atMost(Duration.ofSeconds(150))
                .pollInterval(Duration.ofSeconds(1))
                .until(() -> {
                    last[0] = Json.mapper()
                            .readTree(http.send(request, HttpResponse.BodyHandlers.ofString())
                                    .body());
                    return vm(last[0], "web-vm").path("points").size() > 0
                            && vm(last[0], "db-vm").path("failures").size() > 0;
                });
        return last[0];
    }

    private static JsonNode vm(JsonNode status, String name) {
        for (JsonNode vm : status.path("vms")) {
            if (vm.path("name").asText().equals(name)) {
                return vm;
            }
        }
        return Json.mapper().createObjectNode();
    }

    /** Runs headless Chromium with a fresh profile (no cookie of an earlier run); returns its standard output. */
    private String chromium(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(
                "chromium",
                "--headless=new",
                "--disable-gpu",
                "--no-sandbox",
                "--no-first-run",
                "--user-data-dir=" + Files.createTempDirectory(dir, "chromium-profile")));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(dir, "chromium", ".out");
        Process p = new ProcessBuilder(cmd)
                .redirectOutput(out.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD) // D-Bus noise
                .start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            throw new AssertionError("chromium did not finish within 60 s: " + cmd);
        }
        assertThat(p.exitValue())
                .as("chromium exit code (install it with deploy/install-deps.sh)")
                .isZero();
        return Files.readString(out, StandardCharsets.UTF_8);
    }
}
