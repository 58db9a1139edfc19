package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DR points of a continuous policy ({@code dr.qmp}, {@code dr.node}, {@code dr.points}, {@code
 * dr.keep}; ADR 19) and the one-VM-one-mode lint across policies, at file:line:column.
 */
class PolicyParserDrPointsTest {

    static final Path FILE = Path.of("policies/db.yaml");
    final PolicyParser parser = new PolicyParser(Clock.fixed(Instant.parse("2025-01-01T00:00:00Z"), ZoneOffset.UTC));

    @TempDir
    Path dir;

    private Policy parse(String yaml) {
        return parser.parse(FILE, yaml.getBytes(UTF_8));
    }

    private List<String> problems(String yaml) {
        PolicyException e = assertThrows(PolicyException.class, () -> parse(yaml));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    private static final String HEAD =
            """
            name: db
            vms: {names: [db-1]}
            schedule: {interval: 30s}
            rpo: 2s
            mode: continuous
            """;

    @Test
    void drPointsCarryTheDaemonSocketNodeDirectoryAndRetention() {
        Policy p = parse(
                HEAD
                        + """
                dr:
                  nbd: "nbd://dr-host:10809/{vm}-{disk}"
                  qmp: "unix:/run/dr/{vm}.qmp"
                  node: "{vm}-{disk}"
                  points: "/dr/points/{vm}"
                  keep: {last: 6, hourly: 24}
                """);
        assertThat(p.continuous().orElseThrow().points())
                .hasValue(new Policy.DrPoints(
                        "unix:/run/dr/{vm}.qmp",
                        Optional.of("{vm}-{disk}"),
                        "/dr/points/{vm}",
                        new Retention(6, 24, 0, 0, 0, 0)));

        Policy.DrPoints cfg = p.continuous().orElseThrow().points().orElseThrow();
        assertThat(cfg.qmpOf("db-1", "sd0")).isEqualTo(Path.of("/run/dr/db-1.qmp"));
        assertThat(cfg.nodeOf("db-1", "sd0")).hasValue("db-1-sd0");
        assertThat(cfg.dirOf("db-1", "sd0")).isEqualTo(Path.of("/dr/points/db-1/sd0"));

        Policy noKeep = parse(
                HEAD
                        + """
                dr: {nbd: "nbd://h:1/{vm}-{disk}", qmp: "/run/dr/{vm}-{disk}.qmp", points: "/dr/{vm}"}
                """);
        assertThat(noKeep.continuous().orElseThrow().points().orElseThrow().keep())
                .isEqualTo(Retention.keepAll());
        assertThat(noKeep.continuous().orElseThrow().points().orElseThrow().node())
                .isEmpty();

        Policy mirrorsOnly = parse(HEAD + "dr: {nbd: \"nbd://h:1/{vm}-{disk}\"}\n");
        assertThat(mirrorsOnly.continuous().orElseThrow().points()).isEmpty();
    }

    @Test
    void aBadSocketADirectoryWithoutVmAndAnEmptyKeepAreErrorsAtTheirPlace() {
        assertThat(
                        problems(
                                HEAD
                                        + """
                dr:
                  nbd: "nbd://h:1/{vm}-{disk}"
                  qmp: "tcp:dr-host:4444"
                  points: /dr/points
                  keep: {last: 0}
                """))
                .containsExactly(
                        "policies/db.yaml:8:8: dr.qmp: expected the DR daemon's QMP Unix socket as an absolute path"
                                + " (or unix:/path), such as /run/dr/{vm}-{disk}.qmp, got \"tcp:dr-host:4444\"; TCP is"
                                + " not supported: forward the socket to this host (ssh -L)",
                        "policies/db.yaml:9:11: dr.points: each VM needs its own points directory: put {vm} in it,"
                                + " such as /dr/points/{vm}; got \"/dr/points\"",
                        "policies/db.yaml:10:9: dr.keep: keeps nothing specific; give at least one of last, hourly,"
                                + " daily, weekly, monthly, yearly above zero, or leave keep out to keep every DR point");
    }

    @Test
    void disksSharingADaemonNeedANodeAndKeepNeedsQmpAndPoints() {
        assertThat(
                        problems(
                                HEAD
                                        + """
                dr: {nbd: "nbd://h:1/{vm}-{disk}", qmp: "/run/dr/{vm}.qmp", points: "/dr/{vm}"}
                """))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:6:41: dr.qmp: the disks share one DR daemon here (no {disk} in qmp), so"
                        + " each needs its own node");
        assertThat(problems(HEAD
                        + """
                dr: {nbd: "nbd://h:1/{vm}-{disk}", keep: {last: 3}}
                """))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:6:36: dr.keep: keep belongs to DR points: add qmp:");
        assertThat(
                        problems(
                                HEAD
                                        + """
                dr: {nbd: "nbd://h:1/{vm}-{disk}", qmp: "/run/dr/{vm}-{disk}.qmp"}
                """))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:6:36: dr.qmp: DR points need both");
    }

    @Test
    void aVmSelectedByAContinuousAndAScheduledPolicyIsAnErrorNamingBoth() throws Exception {
        Files.writeString(dir.resolve("db.yaml"), HEAD + "dr: {nbd: \"nbd://h:1/{vm}-{disk}\"}\n");
        Files.writeString(
                dir.resolve("all.yaml"),
                """
                name: all
                vms: {globs: ["*-1"]}
                schedule: {interval: 1h}
                rpo: 2h
                """);
        PolicyException e = assertThrows(PolicyException.class, () -> parser.loadDirectory(dir));
        String both = "policy \"db\" (mode: continuous, " + dir.resolve("db.yaml") + ":1:7) and policy \"all\""
                + " (scheduled, " + dir.resolve("all.yaml") + ":1:7) both select VM \"db-1\"; a VM is either"
                + " mirrored or snapshotted: narrow one policy's vms (names, or a label such as protection:"
                + " continuous)";
        assertThat(e.problems().stream().map(PolicyProblem::toString))
                .containsExactly(
                        dir.resolve("all.yaml") + ":1:7: vms: " + both, dir.resolve("db.yaml") + ":1:7: vms: " + both);

        // labels that contradict: no VM can carry both, so the two policies are fine together
        Files.writeString(
                dir.resolve("all.yaml"),
                """
                name: all
                vms: {globs: ["*"], labels: {protection: scheduled}}
                schedule: {interval: 1h}
                rpo: 2h
                """);
        Files.writeString(
                dir.resolve("db.yaml"),
                HEAD.replace("{names: [db-1]}", "{globs: [\"db-*\"], labels: {protection: continuous}}")
                        + "dr: {nbd: \"nbd://h:1/{vm}-{disk}\"}\n");
        assertThat(parser.loadDirectory(dir).names()).containsExactly("all", "db");
    }

    @Test
    void anOverlapWitnessIsANameBothSelectorsMatchWithLabelsBothCanCarry() {
        VmSelector db = new VmSelector(List.of(), List.of("db-*"), Map.of());
        assertThat(db.overlapWitness(VmSelector.ofNames("db-7"))).hasValue("db-7");
        assertThat(db.overlapWitness(new VmSelector(List.of(), List.of("*"), Map.of("tier", "x"))))
                .hasValue("db-a");
        assertThat(db.overlapWitness(VmSelector.ofNames("web-1"))).isEmpty();
        assertThat(new VmSelector(List.of(), List.of(), Map.of("t", "a"))
                        .overlapWitness(new VmSelector(List.of(), List.of(), Map.of("t", "b"))))
                .isEmpty();
    }
}
