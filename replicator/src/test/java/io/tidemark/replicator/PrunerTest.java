package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Retention;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PrunerTest {

    private static final Instant T0 = Instant.parse("2026-11-20T00:00:00Z");
    private final Repository local =
            Repository.openOrInit(new InMemoryObjectTarget("local"), RepositoryConfig.defaults());
    private final Repository offsite =
            Repository.openOrInit(new InMemoryObjectTarget("offsite"), RepositoryConfig.defaults());
    private final List<Manifest> points = new ArrayList<>();

    private PolicySet policy(Retention localRule, Retention offsiteRule) {
        Policy base = Policy.of(
                "web",
                VmSelector.ofNames("web-1"),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of("offsite"));
        return PolicySet.of(new Policy(
                base.name(),
                base.vms(),
                base.schedule(),
                base.consistency(),
                base.rpo(),
                base.rto(),
                base.fullEvery(),
                base.targets(),
                Map.of("local", localRule, "offsite", offsiteRule),
                Optional.empty()));
    }

    /** Six hourly points of web-1, all local; the first {@code replicated} also on offsite. */
    private void points(int replicated) {
        Random random = new Random(1);
        for (int i = 0; i < 6; i++) {
            Instant at = T0.plus(Duration.ofHours(i));
            Manifest m = new Manifest(
                    1,
                    RestorePointIds.next(at, random),
                    "web-1",
                    "hv1",
                    "j" + i,
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    Trigger.manual(),
                    "web",
                    Optional.empty(),
                    List.of());
            points.add(m);
            local.commit(m);
            if (i < replicated) {
                offsite.commit(m);
            }
        }
    }

    private static List<String> removed(List<Pruner.Decision> plan, String location) {
        return plan.stream()
                .filter(d -> !d.keep() && d.location().equals(location))
                .map(Pruner.Decision::restorePointId)
                .toList();
    }

    @Test
    void keepsWhatTheRuleSaysAndNeverALocalPointThatIsNotReplicatedYet() {
        points(3);
        Pruner pruner = new Pruner(local, Map.of("offsite", offsite), Pruner.Locks.NONE);
        List<Pruner.Decision> plan = pruner.plan(
                policy(new Retention(2, 0, 0, 0, 0, 0), new Retention(10, 0, 0, 0, 0, 0)), T0.plus(Duration.ofDays(1)));
        // local keeps the newest 2 (p4, p5) and p3, which offsite does not have yet
        assertThat(removed(plan, "local"))
                .containsExactly(
                        points.get(0).id(), points.get(1).id(), points.get(2).id());
        assertThat(plan)
                .filteredOn(d -> d.restorePointId().equals(points.get(3).id())
                        && d.location().equals("local"))
                .singleElement()
                .satisfies(d -> assertThat(d.reason()).isEqualTo("not yet replicated to offsite"));
        assertThat(removed(plan, "offsite")).isEmpty();

        assertThat(pruner.apply(plan)).isEqualTo(3);
        assertThat(local.manifests("web-1"))
                .extracting(Manifest::id)
                .containsExactly(
                        points.get(3).id(), points.get(4).id(), points.get(5).id());
        assertThat(offsite.manifests("web-1")).hasSize(3);
    }

    @Test
    void neverTouchesALockedManifestOrTheNewestPoint() {
        points(6);
        String lockedKey = ObjectKeys.manifest("web-1", points.get(0).id());
        Instant now = T0.plus(Duration.ofDays(1));
        Pruner pruner = new Pruner(
                local,
                Map.of("offsite", offsite),
                (location, key) -> location.equals("offsite") && key.equals(lockedKey)
                        ? Optional.of(now.plus(Duration.ofDays(30)))
                        : Optional.empty());
        List<Pruner.Decision> plan =
                pruner.plan(policy(new Retention(1, 0, 0, 0, 0, 0), new Retention(0, 0, 1, 0, 0, 0)), now);
        assertThat(removed(plan, "offsite"))
                .containsExactly(
                        points.get(1).id(),
                        points.get(2).id(),
                        points.get(3).id(),
                        points.get(4).id());
        assertThat(plan)
                .filteredOn(d -> d.location().equals("offsite") && d.keep())
                .extracting(Pruner.Decision::reason)
                .containsExactly("locked until " + now.plus(Duration.ofDays(30)), "newest restore point");
    }

    @Test
    void aVmThatNoPolicySelectsIsKeptWhole() {
        points(0);
        Pruner pruner = new Pruner(local, Map.of(), Pruner.Locks.NONE);
        PolicySet other = PolicySet.of(Policy.of(
                "db",
                VmSelector.ofNames("db-1"),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of()));
        assertThat(pruner.plan(other, T0)).hasSize(6).allSatisfy(d -> {
            assertThat(d.keep()).isTrue();
            assertThat(d.reason()).isEqualTo("no policy selects this VM");
        });
    }

    @Test
    void aPinnedPointIsKeptBeyondTheRuleAndAnExpiredOneFreesItsSlot() {
        points(6);
        PolicySet rule = policy(new Retention(2, 0, 0, 0, 0, 0), new Retention(2, 0, 0, 0, 0, 0));
        Instant now = T0.plus(Duration.ofDays(1));
        Map<String, String> deploy = Map.of("app", "shop", "commit", "4f2a9c1");
        // p1: a failed deploy's pre-deploy point; p4: a successful one's
        local.mark("web-1", points.get(1).id(), new PointMark(PointMark.Kind.PINNED, "deploy failed", now, deploy));
        local.mark("web-1", points.get(4).id(), new PointMark(PointMark.Kind.EXPIRED, "deploy done", now, deploy));
        Pruner pruner = new Pruner(local, Map.of("offsite", offsite), Pruner.Locks.NONE);

        List<Pruner.Decision> plan = pruner.plan(rule, now);

        // local: last 2 of the unexpired points are p3 and p5; p1 stays pinned; p4 goes
        assertThat(removed(plan, "local"))
                .containsExactly(
                        points.get(0).id(), points.get(2).id(), points.get(4).id());
        assertThat(plan)
                .filteredOn(d -> d.location().equals("local"))
                .extracting(Pruner.Decision::reason)
                .contains("pinned: deploy failed", "expired: deploy done");
        // the marks are per location: offsite has none and keeps its own last 2
        assertThat(removed(plan, "offsite"))
                .containsExactly(
                        points.get(0).id(),
                        points.get(1).id(),
                        points.get(2).id(),
                        points.get(3).id());
    }
}
