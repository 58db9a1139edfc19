package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.recovery.DrHypervisor;
import io.tidemark.recovery.Failover;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FailoverAdaptationsTest {

    @Test
    void aStartedVmsJsonSaysWhichAcceleratorRanAndWhatWasAdapted() {
        Instant t = Instant.parse("2026-12-07T01:00:00Z");
        Manifest m = new Manifest(
                1,
                "20261207T010000.000Z-aaaa",
                "web-1",
                "hv1",
                "j",
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.schedule("p"),
                "p",
                Optional.empty(),
                List.of(new DiskEntry("vda", 1 << 20, 1 << 18, "00", "tm-x", Optional.empty(), 0, 0)));
        Failover.VmResult r = new Failover.VmResult(
                "web-1",
                "apps",
                m,
                Failover.State.STARTED,
                Optional.of(new Failover.Timing(Duration.ofSeconds(60), Duration.ofSeconds(2), t, t)),
                List.of(Path.of("/srv/dr/web-1/vda.raw")),
                List.of(),
                Optional.of(new DrHypervisor.Started(
                        "tcg", List.of("runs under TCG (domain type qemu, software emulation), not KVM: no vmx"))));

        ObjectNode o = Json.mapper().createObjectNode();
        FailoverCommand.toJson(r, o);

        assertThat(o.path("accelerator").asText()).isEqualTo("tcg");
        assertThat(o.path("adapted").get(0).asText()).startsWith("runs under TCG");
    }

    @Test
    void aStartedVmsRtoIsAlsoCountedFromTheJvmsStart() {
        Instant jvm = Instant.parse("2026-12-07T01:00:00Z");
        Instant command = jvm.plusMillis(1800);
        Instant restore = command.plusMillis(1200);
        Instant running = restore.plusMillis(4500);
        Failover.VmResult r = new Failover.VmResult(
                "web-1",
                "apps",
                point(jvm.minusSeconds(60)),
                Failover.State.STARTED,
                Optional.of(new Failover.Timing(
                        Duration.ofSeconds(60), Duration.between(command, running), restore, running)),
                List.of(Path.of("/srv/dr/web-1/vda.raw")),
                List.of());
        Failover.VmResult already = new Failover.VmResult(
                "db-1",
                "data",
                point(jvm.minusSeconds(90)),
                Failover.State.ALREADY_RUNNING,
                Optional.empty(),
                List.of(),
                List.of());
        RecoveryPlan plan = new RecoveryPlan(
                Path.of("plan.yaml"), "dr", "offsite", Path.of("/srv/dr"), Optional.empty(), List.of());

        ObjectNode o =
                FailoverCommand.summary(plan, List.of(already, r), new FailoverCommand.Starts(jvm, command, restore));

        assertThat(o.path("jvmStartedAt").asText()).isEqualTo(jvm.toString());
        assertThat(o.path("commandStartedAt").asText()).isEqualTo(command.toString());
        assertThat(o.path("restoreStartedAt").asText()).isEqualTo(restore.toString());
        assertThat(o.path("vms").get(1).path("rtoSeconds").asDouble()).isEqualTo(5.7);
        assertThat(o.path("vms").get(1).path("rtoFromCommandStartSeconds").asDouble())
                .as("from the JVM's start: 1.8 s more than from the command's code")
                .isEqualTo(7.5);
        assertThat(o.path("vms").get(0).has("rtoFromCommandStartSeconds"))
                .as("a VM that already ran has no RTO")
                .isFalse();
    }

    private static Manifest point(Instant t) {
        return new Manifest(
                1,
                "20261207T010000.000Z-aaaa",
                "web-1",
                "hv1",
                "j",
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.schedule("p"),
                "p",
                Optional.empty(),
                List.of(new DiskEntry("vda", 1 << 20, 1 << 18, "00", "tm-x", Optional.empty(), 0, 0)));
    }
}
