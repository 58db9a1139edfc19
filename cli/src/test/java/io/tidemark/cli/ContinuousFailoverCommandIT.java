package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.format.Json;
import io.tidemark.recovery.DrSite;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.mirror.ContinuousMirror;
import io.tidemark.workers.mirror.ContinuousProtection;
import io.tidemark.workers.mirror.MirrorRecord;
import io.tidemark.workers.mirror.MirrorRecorder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tidemark dr failover --json} of a continuously protected VM, end to end through the CLI: a
 * real QEMU (TCG) mirrored to a real {@code qemu-storage-daemon}, its state recorded into a file
 * target the engine config names as the plan's source, the primary killed; the command boots the
 * replica at the DR site, prints RPO 0 and the RTO in its JSON, and a second run starts nothing.
 */
class ContinuousFailoverCommandIT {

    private static final long SIZE = 32L << 20;

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void theCommandBootsTheReplicaAndPrintsTheAchievedRpoAndRto() throws Exception {
        Path records = Files.createDirectories(dir.resolve("offsite"));
        Path work = dir.resolve("w");
        DrSite site = new DrSite(work);
        try (QemuVm vm = QemuVm.start(dir, "vm1", SIZE);
                DrNbdSite dr = DrNbdSite.start(dir, "vm1-sd0", SIZE);
                FileObjectTarget target = new FileObjectTarget(records)) {
            ContinuousProtection protection = new ContinuousProtection(
                    new RecordingEventBus(),
                    Clock.systemUTC(),
                    Duration.ofMillis(100),
                    ContinuousMirror.DEFAULT_RECONNECT_DELAY);
            MirrorRecorder recorder = new MirrorRecorder(
                    protection::status,
                    v -> Optional.of(new MirrorRecorder.Destination("cdp", List.of(target))),
                    Clock.systemUTC(),
                    MirrorRecorder.DEFAULT_HEARTBEAT);
            try {
                protection.protect(new ContinuousProtection.Protected(
                        "vm1", vm.qmpSocket(), "cdp", Duration.ofSeconds(1), dr.uri()));
                recorder.start();
                vm.write("sd0", 1L << 20, 64 * 1024, 0x2a);
                Instant written = Instant.now();
                await().atMost(Duration.ofSeconds(90)).until(() -> MirrorRecord.newest(target, "vm1")
                        .filter(r -> r.inSync() && r.writtenAt().isAfter(written))
                        .isPresent());
                vm.kill();
            } finally {
                recorder.close();
                protection.close();
            }
            String acknowledged = vm.model("sd0").sha256();
            Path config = Files.writeString(
                    dir.resolve("engine.yaml"),
                    """
                    host: dr-host
                    data: %s
                    targets:
                      offsite:
                        type: file
                        path: %s
                    """
                            .formatted(dir.resolve("data"), records));
            Path plan = Files.writeString(
                    dir.resolve("plan.yaml"),
                    """
                    site: dr-test
                    source: offsite
                    work-dir: %s
                    groups:
                      - name: data
                        vms:
                          - name: vm1
                            continuous:
                              disks:
                                sd0: {replica: %s, qmp: %s}
                    """
                            .formatted(work, dr.image(), dr.qmpSocket()));
            try {
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
                String dry = std.out();
                JsonNode checked = Json.mapper()
                        .readTree(dry.substring(dry.indexOf("{\n")))
                        .path("continuous")
                        .get(0);
                assertThat(checked.path("recordFound").asBoolean()).isTrue();
                assertThat(checked.path("inSync").asBoolean()).isTrue();
                assertThat(site.status("vm1")).isEmpty(); // the dry run starts nothing
                std.reset();

                assertThat(Main.execute(
                                "dr", "failover", "--config", config.toString(), "--plan", plan.toString(), "--json"))
                        .as(std.err())
                        .isZero();
                String out = std.out();
                // the JSON summary, after any log lines on the same stream
                JsonNode vm1 = Json.mapper()
                        .readTree(out.substring(out.indexOf("{\n")))
                        .path("vms")
                        .get(0);
                assertThat(vm1.path("vm").asText()).isEqualTo("vm1");
                assertThat(vm1.path("state").asText()).isEqualTo("started");
                assertThat(vm1.path("source").asText()).isEqualTo("dr-replica");
                assertThat(vm1.path("rpoSeconds").asDouble()).isZero();
                assertThat(vm1.path("rpoKnown").asBoolean()).isTrue();
                assertThat(vm1.path("rpoUpperBound").asBoolean()).isFalse();
                assertThat(vm1.path("rtoSeconds").asDouble()).isPositive().isLessThan(15 * 60);
                assertThat(vm1.path("rtoFromCommandStartSeconds").asDouble()).isLessThan(15 * 60);
                assertThat(site.status("vm1")).contains("running");
                assertThat(DrNbdSite.sha256(site.disk("vm1", "sd0"))).isEqualTo(acknowledged);

                std.reset();
                assertThat(Main.execute("dr", "failover", "--config", config.toString(), "--plan", plan.toString()))
                        .isZero();
                assertThat(std.out()).contains("vm1").contains("already-running");
            } finally {
                site.stop("vm1");
            }
        }
    }
}
