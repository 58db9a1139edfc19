package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
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
}
