package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code mode: continuous} with {@code dr.nbd} (ADR 19), and its lint at file:line:column. */
class PolicyParserContinuousTest {

    static final Path FILE = Path.of("policies/db.yaml");
    final PolicyParser parser = new PolicyParser(Clock.fixed(Instant.parse("2025-01-01T00:00:00Z"), ZoneOffset.UTC));

    private Policy parse(String yaml) {
        return parser.parse(FILE, yaml.getBytes(UTF_8));
    }

    private List<String> problems(String yaml) {
        PolicyException e = assertThrows(PolicyException.class, () -> parse(yaml));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    @Test
    void aContinuousPolicyCarriesItsDrExportAndLeavesTheScheduledSet() {
        Policy p = parse(
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 2s
                mode: continuous
                dr: {nbd: "nbd://dr-host:10809/{vm}-{disk}"}
                """);
        assertThat(p.isContinuous()).isTrue();
        assertThat(p.continuous()).hasValue(new Policy.Continuous("nbd://dr-host:10809/{vm}-{disk}"));
        assertThat(p.rpo()).isEqualTo(Duration.ofSeconds(2));
        // policy plan: the 1h schedule does not make a 2s mirror RPO infeasible
        assertThat(PolicyPlan.of(p, PolicyPlan.Options.defaults(Instant.parse("2025-01-01T00:00:00Z")))
                        .problems())
                .isEmpty();

        Policy scheduled = parse(
                """
                name: web
                vms: {names: [web-1]}
                schedule: {interval: 1h}
                rpo: 2h
                mode: scheduled
                """);
        assertThat(scheduled.isContinuous()).isFalse();
        PolicySet set = PolicySet.of(p, scheduled);
        assertThat(set.scheduled().names()).containsExactly("web");
        assertThat(set.continuous()).containsExactly(p);
    }

    @Test
    void aContinuousPolicyWithoutADrExportIsAnErrorAtItsMode() {
        assertThat(
                        problems(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 1s
                mode: continuous
                """))
                .containsExactly("policies/db.yaml:5:7: mode: a continuous policy needs its DR export: add dr: {nbd:"
                        + " \"nbd://DR-HOST:10809/{vm}-{disk}\"}");
    }

    @Test
    void anRpoBeyondSecondsABadUriAndATriggerAreErrorsAtTheirPlace() {
        assertThat(
                        problems(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 15m
                mode: continuous
                triggers: {pre-deploy: {apps: [shop]}}
                dr: {nbd: "http://dr-host/{vm}-{disk}", points: /srv/dr}
                """))
                .containsExactly(
                        "policies/db.yaml:4:6: rpo: a continuous policy's rpo is the mirror lag it tolerates, from 1s to"
                                + " 1m, got 15m; for a longer RPO use mode: scheduled",
                        "policies/db.yaml:6:1: triggers: a continuous policy takes no snapshots, so no pre-deploy hook"
                                + " can trigger one; remove triggers or use mode: scheduled",
                        "policies/db.yaml:7:11: dr.nbd: expected an NBD URI, nbd://HOST:PORT/EXPORT or"
                                + " nbd+unix:///EXPORT?socket=/path, got \"http://dr-host/{vm}-{disk}\"",
                        "policies/db.yaml:7:41: dr.points: DR points need both the DR daemon's QMP socket and their"
                                + " directory: add qmp: \"/run/dr/{vm}-{disk}.qmp\" to dr");
    }

    @Test
    void oneExportForEveryDiskAnUnknownModeAndDrWithoutContinuousAreErrors() {
        assertThat(
                        problems(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 1s
                mode: continuous
                dr: {nbd: "nbd://dr-host:10809/{vm}"}
                """))
                .singleElement()
                .asString()
                .startsWith("policies/db.yaml:6:11: dr.nbd: each disk needs its own replica: put {disk}");
        assertThat(
                        problems(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 1s
                mode: mirrored
                """))
                .containsExactly("policies/db.yaml:5:7: mode: expected one of scheduled, continuous, got \"mirrored\"");
        assertThat(
                        problems(
                                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 1h
                dr: {nbd: "nbd://dr-host:10809/{vm}-{disk}"}
                """))
                .containsExactly("policies/db.yaml:5:1: dr: dr is the DR export of continuous protection; add mode:"
                        + " continuous, or remove dr");
    }
}
