package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.recovery.AchievedRpo;
import io.tidemark.recovery.ContinuousFailover;
import io.tidemark.recovery.DrHypervisor;
import io.tidemark.recovery.Failover;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class FailoverContinuousTest {

    private static final Instant T = Instant.parse("2026-12-07T03:00:00Z");

    private static ContinuousFailover.VmResult started(AchievedRpo rpo) {
        return new ContinuousFailover.VmResult(
                "orders-1",
                "data",
                Failover.State.STARTED,
                "dr-replica",
                Map.of("sd0", "replica"),
                Optional.of(rpo),
                Optional.of(new ContinuousFailover.Timing(Duration.ofMillis(4200), T.plusSeconds(3), T.plusSeconds(4))),
                List.of(Path.of("/srv/dr/orders-1/sd0.raw")),
                Optional.of(new DrHypervisor.Started("tcg", List.of())),
                List.of("deleted the DR daemon's export dr of sd0 (no mirrored write after it)"));
    }

    @Test
    void aContinuousVmsJsonCarriesTheAchievedRpoItsKindAndTheRto() {
        AchievedRpo rpo = new AchievedRpo(
                Optional.of(Duration.ofMillis(12_300)),
                true,
                Optional.of(T.minusSeconds(12)),
                Optional.of(T.minusSeconds(2)),
                Optional.of(T),
                "heartbeat",
                "the mirror was sd0=OUTAGE ...");
        ObjectNode o = io.tidemark.format.Json.mapper().createObjectNode();
        FailoverCommand.toJson(started(rpo), o);

        assertThat(o.path("continuous").asBoolean()).isTrue();
        assertThat(o.path("source").asText()).isEqualTo("dr-replica");
        assertThat(o.path("rpoSeconds").asDouble()).isEqualTo(12.3);
        assertThat(o.path("rpoKnown").asBoolean()).isTrue();
        assertThat(o.path("rpoUpperBound").asBoolean()).isTrue();
        assertThat(o.path("dataAsOf").asText()).isEqualTo(T.minusSeconds(12).toString());
        assertThat(o.path("primaryLastHeardAt").asText())
                .isEqualTo(T.minusSeconds(2).toString());
        assertThat(o.path("primaryLostAtFrom").asText()).isEqualTo("heartbeat");
        assertThat(o.path("rtoSeconds").asDouble()).isEqualTo(4.2);
        assertThat(o.path("pointByDisk").path("sd0").asText()).isEqualTo("replica");
        assertThat(FailoverCommand.line(started(rpo)))
                .contains("DR replica (now)")
                .contains("<=12.3s");
    }

    @Test
    void anUnknownRpoIsNullInJsonAndUnknownInTextNeverZero() {
        AchievedRpo rpo = AchievedRpo.ofReplica(Optional.empty(), Optional.empty(), T, "file:///r/mirror/orders-1/");
        ObjectNode o = io.tidemark.format.Json.mapper().createObjectNode();
        FailoverCommand.toJson(started(rpo), o);

        JsonNode seconds = o.get("rpoSeconds");
        assertThat(seconds.isNull()).isTrue();
        assertThat(o.path("rpoKnown").asBoolean()).isFalse();
        assertThat(o.path("rpoNote").asText()).contains("no mirror state record");
        assertThat(FailoverCommand.line(started(rpo))).contains("unknown");
    }

    @Test
    void theOptionsChooseNowAMomentOrAPoint() {
        FailoverCommand now = new FailoverCommand();
        new CommandLine(now).parseArgs("--plan", "p.yaml");
        assertThat(now.choice()).isInstanceOf(ContinuousFailover.Choice.Now.class);

        FailoverCommand at = new FailoverCommand();
        new CommandLine(at)
                .parseArgs(
                        "--plan",
                        "p.yaml",
                        "--at",
                        "2026-12-07T03:10:00Z",
                        "--primary-lost-at",
                        "2026-12-07T03:12:00Z");
        assertThat(at.choice()).isEqualTo(new ContinuousFailover.Choice.At(Instant.parse("2026-12-07T03:10:00Z")));
        assertThat(at.primaryLostAt).isEqualTo(Instant.parse("2026-12-07T03:12:00Z"));

        FailoverCommand point = new FailoverCommand();
        new CommandLine(point).parseArgs("--plan", "p.yaml", "--point", "p-1765076400000");
        assertThat(point.choice()).isEqualTo(new ContinuousFailover.Choice.Point("p-1765076400000"));
    }

    @Test
    void continuousVmsAreLeftOutOfThePlanThatRestoresPoints() {
        RecoveryPlan.Vm mirrored = new RecoveryPlan.Vm(
                "orders-1",
                128,
                1,
                List.of(),
                List.of(),
                EnumSet.noneOf(RecoveryPlan.Setting.class),
                Optional.of(new RecoveryPlan.Continuous(Map.of(
                        "sd0",
                        new RecoveryPlan.ReplicaDisk(Path.of("/dr/o.raw"), Optional.empty(), Optional.empty())))));
        RecoveryPlan.Vm web = new RecoveryPlan.Vm("web-1", 128, 1, List.of(), List.of());
        RecoveryPlan plan = new RecoveryPlan(
                Path.of("p.yaml"),
                "dr",
                "offsite",
                Path.of("/srv/dr"),
                Optional.empty(),
                List.of(
                        new RecoveryPlan.Group("data", List.of(mirrored)),
                        new RecoveryPlan.Group("apps", List.of(web))));

        RecoveryPlan fromPoints = FailoverCommand.withoutContinuous(plan);

        assertThat(fromPoints.groups()).extracting(RecoveryPlan.Group::name).containsExactly("apps");
        assertThat(fromPoints.vms()).extracting(RecoveryPlan.Vm::name).containsExactly("web-1");
    }

    @org.junit.jupiter.api.io.TempDir
    Path dir;

    @org.junit.jupiter.api.extension.RegisterExtension
    final io.tidemark.testkit.StdStreams std = new io.tidemark.testkit.StdStreams();

    @Test
    void theDryRunNamesAMissingReplicaAndSaysThereIsNoRecordYet() throws Exception {
        Path records = java.nio.file.Files.createDirectories(dir.resolve("offsite"));
        Path config = java.nio.file.Files.writeString(
                dir.resolve("engine.yaml"),
                "host: dr\ndata: " + dir.resolve("data") + "\ntargets:\n  offsite:\n    type: file\n    path: "
                        + records + "\n");
        Path plan = java.nio.file.Files.writeString(
                dir.resolve("plan.yaml"),
                "site: s\nsource: offsite\nwork-dir: " + dir.resolve("w")
                        + "\ngroups: [{name: g, vms: [{name: orders-1, continuous: {disks: {sd0: {replica: "
                        + dir.resolve("missing.raw") + "}}}}]}]\n");

        int code =
                Main.execute("dr", "failover", "--config", config.toString(), "--plan", plan.toString(), "--dry-run");

        assertThat(code).as(std.err()).isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.out())
                .contains("orders-1 (continuous): no mirror state record at")
                .contains("the achieved RPO would be unknown")
                .contains("PROBLEM: the DR replica " + dir.resolve("missing.raw") + " of orders-1/sd0 does not exist");
        assertThat(dir.resolve("w")).doesNotExist();
    }
}
