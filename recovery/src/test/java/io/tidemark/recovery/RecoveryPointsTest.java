package io.tidemark.recovery;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class RecoveryPointsTest {

    static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    final Map<String, List<Manifest>> points = new HashMap<>();

    /** A point of {@code vm} from the firing of policy {@code policy} scheduled at T0 + minute. */
    private Manifest point(String vm, String policy, int minute, int capturedSecondsLate) {
        Instant scheduled = T0.plusSeconds(60L * minute);
        Instant captured = scheduled.plusSeconds(capturedSecondsLate);
        Manifest m = new Manifest(
                1,
                String.format("%013d-%s", captured.toEpochMilli(), vm),
                vm,
                "hv1",
                policy + "/" + vm + "/" + scheduled.toEpochMilli(),
                captured,
                captured.plusSeconds(5),
                ConsistencyAchieved.CRASH,
                Trigger.schedule(policy),
                policy,
                Optional.empty(),
                List.of());
        points.computeIfAbsent(vm, v -> new ArrayList<>()).add(m);
        return m;
    }

    private Manifest manual(String vm, int minute) {
        Instant captured = T0.plusSeconds(60L * minute);
        Manifest m = new Manifest(
                1,
                String.format("%013d-%s", captured.toEpochMilli(), vm),
                vm,
                "hv1",
                "manual-" + captured.toEpochMilli(),
                captured,
                captured,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "",
                Optional.empty(),
                List.of());
        points.computeIfAbsent(vm, v -> new ArrayList<>()).add(m);
        return m;
    }

    private static RecoveryPlan plan(String groups) {
        return new RecoveryPlanParser()
                .parse(
                        Path.of("plan.yaml"),
                        ("site: s\nsource: offsite\nwork-dir: /w\ngroups:\n" + groups).getBytes(UTF_8));
    }

    private Map<String, Manifest> choose(RecoveryPlan plan) {
        return RecoveryPoints.choose(plan, vm -> points.getOrDefault(vm, List.of()));
    }

    @Test
    void aVmOnItsOwnComesBackFromItsNewestPoint() {
        point("web", "p", 0, 1);
        Manifest newest = point("web", "p", 10, 1);
        point("web", "p", 5, 1);
        assertThat(choose(plan("  - {name: g, vms: [{name: web}]}\n"))).containsEntry("web", newest);
    }

    @Test
    void consistentVmsComeFromTheNewestFiringTheyAllHave() {
        Manifest db5 = point("db", "p", 5, 2);
        point("db", "p", 10, 3); // queue's point of this firing has not replicated yet
        Manifest q5 = point("queue", "p", 5, 7);
        manual("queue", 12); // newer, but no firing of db
        Manifest web = point("web", "p", 10, 1);
        RecoveryPlan plan = plan(
                """
                  - name: data
                    vms:
                      - {name: db}
                      - {name: queue, consistent-with: [db]}
                  - name: apps
                    vms: [{name: web}]
                """);
        Map<String, Manifest> chosen = choose(plan);
        assertThat(chosen).containsExactly(Map.entry("db", db5), Map.entry("queue", q5), Map.entry("web", web));
    }

    @Test
    void consistencyIsTransitiveAcrossGroups() {
        point("a", "p", 1, 0);
        point("b", "p", 1, 0);
        point("c", "p", 1, 0);
        point("a", "p", 2, 0);
        point("b", "p", 2, 0);
        RecoveryPlan plan = plan(
                """
                  - {name: g1, vms: [{name: a}, {name: b, consistent-with: [a]}]}
                  - {name: g2, vms: [{name: c, consistent-with: [b]}]}
                """);
        assertThat(RecoveryPoints.consistencySets(plan)).hasSize(1);
        assertThat(choose(plan).values())
                .extracting(RecoveryPoints::firing)
                .containsOnly("p/" + T0.plusSeconds(60).toEpochMilli());
    }

    @Test
    void noCommonFiringIsAPermanentErrorNamingTheVms() {
        point("db", "p", 1, 0);
        point("queue", "p", 2, 0);
        RecoveryPlan plan = plan("  - {name: g, vms: [{name: db}, {name: queue, consistent-with: [db]}]}\n");
        assertThatThrownBy(() -> choose(plan))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("db, queue")
                .hasMessageContaining("no firing has a restore point of every one of them at 'offsite'");
    }

    @Test
    void vmsWithoutAnyPointAreNamed() {
        point("db", "p", 1, 0);
        RecoveryPlan plan = plan("  - {name: g, vms: [{name: db}, {name: web}, {name: mail}]}\n");
        assertThatThrownBy(() -> choose(plan))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no restore point of web, mail at the source target 'offsite'");
    }

    @Test
    void aFiringIsTheJobIdWithoutTheVm() {
        Manifest m = point("db", "nightly", 3, 0);
        assertThat(RecoveryPoints.firing(m))
                .isEqualTo("nightly/" + T0.plusSeconds(180).toEpochMilli());
        assertThat(RecoveryPoints.firing(manual("db", 4))).startsWith("db:");
    }
}
