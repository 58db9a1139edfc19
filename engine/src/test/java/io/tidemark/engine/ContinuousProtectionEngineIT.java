package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.format.Json;
import io.tidemark.testkit.qemu.DrNbdSite;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code mode: continuous} policy applied by the running engine, wired as {@code tidemark run}
 * wires it (embedded Kafka, real QEMU under TCG, a real {@code qemu-storage-daemon} as the DR
 * site): the worker mirrors the VM's disk to the policy's {@code dr.nbd}, guest writes reach the
 * replica, the lag is on {@code /metrics} and the status page; a second VM whose DR export is
 * missing is reported and retried without stopping the first, and protected once the export is up;
 * the scheduler takes no snapshot of a continuous policy; a reload to {@code mode: scheduled} stops
 * the mirrors.
 */
class ContinuousProtectionEngineIT {

    private static final long MIB = 1 << 20;
    private static final Duration DEADLINE = Duration.ofSeconds(180);

    private static final String TOKEN = "continuous-protection-it-token-0123456789";

    @TempDir
    Path dir;

    @Test
    void aContinuousPolicyMirrorsItsVmToTheDrSiteAndExposesTheLag() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path drDir = Files.createDirectories(dir.resolve("dr"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {globs: ["db-*"]}
                schedule: {interval: 10s}
                rpo: 2s
                mode: continuous
                dr: {nbd: "nbd+unix:///{vm}-{disk}?socket=%s/{vm}-{disk}.nbd"}
                """
                        .formatted(drDir));
        EngineConfig config = EngineConfig.builder()
                .host("hv-cdp")
                .data(dir.resolve("data"))
                .qmpDir(qmpDir)
                .policies(policies)
                .metrics("127.0.0.1:0")
                .statusPage(
                        new EngineConfig.StatusPageConfig(Files.writeString(dir.resolve("status.token"), TOKEN + "\n")))
                .build();

        try (QemuVm vm = QemuVm.start(qmpDir, "db-1", 16L * MIB);
                QemuVm orphan = QemuVm.start(qmpDir, "db-2", 16L * MIB); // no DR export for this one
                DrNbdSite dr = DrNbdSite.start(drDir, "db-1-" + vm.diskIds().get(0), 16L * MIB);
                Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC())) {
            String disk = vm.diskIds().get(0);
            ContinuousMirrors mirrors = engine.continuousMirrors().orElseThrow();
            await().atMost(DEADLINE)
                    .until(() -> mirrors.states().stream().anyMatch(s -> s.vm().equals("db-1") && s.inSync()));

            vm.write(disk, MIB, 64 * 1024, 0x3c);
            vm.write(disk, 9L * MIB, 4096, 0x7e);
            // write-blocking: a completed guest write is already at the DR site
            assertThat(dr.sha256()).isEqualTo(vm.model(disk).sha256());

            String lag = "tidemark_mirror_lag_seconds{vm=\"db-1\",disk=\"" + disk + "\"} 0.0";
            String inSync = "tidemark_mirror_in_sync{vm=\"db-1\",disk=\"" + disk + "\"} 1";
            String orphanFailed = "tidemark_mirror_start_failed{vm=\"db-2\"} 1";
            String[] text = {""};
            HttpClient http = HttpClient.newHttpClient();
            HttpRequest scrape = HttpRequest.newBuilder(URI.create(
                            "http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/metrics"))
                    .timeout(Duration.ofSeconds(5))
                    .build();
            await().atMost(DEADLINE).pollInterval(Duration.ofMillis(500)).until(() -> {
                text[0] =
                        http.send(scrape, HttpResponse.BodyHandlers.ofString()).body();
                return text[0].contains(lag) && text[0].contains(inSync) && text[0].contains(orphanFailed);
            });
            assertThat(text[0])
                    .contains("tidemark_mirror_start_failed{vm=\"db-1\"} 0")
                    // measured by the mirror, not by restore points it never takes
                    .doesNotContain("tidemark_rpo_seconds{vm=\"db-1\"");

            // one VM's missing DR export: named, retried, and it did not stop db-1's mirror
            assertThat(mirrors.protectedVms()).containsExactly("db-1");
            assertThat(mirrors.failures().get("db-2")).contains("db-2-").contains("cannot be reached");
            assertThat(engine.scheduler().policies().names()).doesNotContain("db");

            // the status page shows the mirror as the VM's dr-mirror location, from memory
            JsonNode status = Json.mapper()
                    .readTree(http.send(
                                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                                                    + engine.metricsPort().orElseThrow() + "/status.json"))
                                            .header("Authorization", "Bearer " + TOKEN)
                                            .timeout(Duration.ofSeconds(5))
                                            .build(),
                                    HttpResponse.BodyHandlers.ofString())
                            .body());
            JsonNode db1 = null;
            for (JsonNode v : status.path("vms")) {
                if (v.path("name").asText().equals("db-1")) {
                    db1 = v;
                }
            }
            assertThat(db1).as("db-1 on the status page: %s", status).isNotNull();
            assertThat(db1.path("policy").asText()).isEqualTo("db");
            JsonNode location = db1.path("locations").get(0);
            assertThat(location.path("location").asText()).isEqualTo("dr-mirror");
            assertThat(location.path("rpoSeconds").asLong()).isEqualTo(2);
            assertThat(location.path("violated").asBoolean()).isFalse();

            // the cause fixed (db-2's DR export started): protected at a later round, no restart
            try (DrNbdSite dr2 =
                    DrNbdSite.start(drDir, "db-2-" + orphan.diskIds().get(0), 16L * MIB)) {
                await().atMost(DEADLINE)
                        .until(() -> mirrors.states().stream().anyMatch(s -> s.vm().equals("db-2") && s.inSync()));
                assertThat(mirrors.failures()).isEmpty();

                // a reload to mode: scheduled stops both mirrors in QEMU and hands the policy to the scheduler
                Files.writeString(
                        policies.resolve("db.yaml"),
                        """
                        name: db
                        vms: {globs: ["db-*"]}
                        schedule: {interval: 1h}
                        rpo: 2h
                        """);
                await().atMost(DEADLINE).until(() -> mirrors.protectedVms().isEmpty());
                // a VM counts as protected until QEMU has ended its mirror (a clean-clone CI run once saw
                // the job still listed as ready after the engine had reported the VM unprotected)
                assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
                assertThat(orphan.qmp("query-block-jobs", null)).isEmpty();
                assertThat(engine.scheduler().policies().names()).contains("db");
                vm.write(disk, 3L * MIB, 4096, 0x11); // no longer mirrored: the replica keeps the past
                assertThat(dr.sha256()).isNotEqualTo(vm.model(disk).sha256());
            }
        }
    }
}
