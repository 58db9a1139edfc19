package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Retention;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Capacity budgets in prune: five points of one 4-chunk disk, each changing chunk 0, so the first
 * occupies 4 chunks and each later one adds 1 (8 distinct chunks in all).
 */
class PrunerBudgetTest {

    private static final Instant T0 = Instant.parse("2026-11-20T00:00:00Z");
    private final Repository local =
            Repository.openOrInit(new InMemoryObjectTarget("local"), RepositoryConfig.defaults());
    private final int chunk = local.config().chunkSize();
    private final List<Manifest> points = new ArrayList<>();
    private final Random random = new Random(3);

    @BeforeEach
    void fivePoints() {
        byte[][] shared = {bytes(), bytes(), bytes()};
        for (int i = 0; i < 5; i++) {
            DiskIndexBuilder index = local.newIndex(4L * chunk, Optional.empty());
            index.set(0, local.putChunk(bytes(), chunk).digest()); // changed in every point
            for (int c = 1; c < 4; c++) {
                index.set(c, local.putChunk(shared[c - 1], chunk).digest());
            }
            Instant at = T0.plus(Duration.ofHours(i));
            Manifest m = new Manifest(
                    1,
                    RestorePointIds.next(at, random),
                    "db-1",
                    "hv1",
                    "j" + i,
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    Trigger.manual(),
                    "db",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda", 4L * chunk, chunk, index.finish().hex(), "c" + i, Optional.empty(), 0, 0)));
            local.commit(m);
            points.add(m);
        }
    }

    private byte[] bytes() {
        byte[] b = new byte[chunk];
        random.nextBytes(b);
        return b;
    }

    private PolicySet keepTenWithin(long budget) {
        Policy p = Policy.of(
                        "db",
                        VmSelector.ofNames("db-1"),
                        Schedule.Interval.every(Duration.ofHours(1)),
                        Duration.ofHours(2),
                        List.of())
                .withBudgets(Map.of("local", budget));
        return PolicySet.of(new Policy(
                p.name(),
                p.vms(),
                p.schedule(),
                p.consistency(),
                p.rpo(),
                p.rto(),
                p.fullEvery(),
                p.targets(),
                Map.of("local", new Retention(10, 0, 0, 0, 0, 0)),
                Optional.empty(),
                List.of(),
                Map.of(),
                Policy.Qos.NONE,
                p.budgets()));
    }

    private List<String> removed(Pruner.Plan plan) {
        return plan.decisions().stream()
                .filter(d -> !d.keep())
                .map(Pruner.Decision::restorePointId)
                .toList();
    }

    private String id(int i) {
        return points.get(i).id();
    }

    @Test
    void theOldestPointsGoUntilTheRestFitsTheBudgetThoughTheRetentionRuleKeepsThem() {
        Pruner pruner = new Pruner(local, Map.of(), Pruner.Locks.NONE);
        // all five occupy 8 chunks; a budget of 6 makes the two oldest go (each frees its own chunk 0)
        Pruner.Plan plan = pruner.review(keepTenWithin(6L * chunk), T0.plus(Duration.ofDays(1)));
        assertThat(removed(plan)).containsExactly(id(0), id(1));
        assertThat(plan.decisions()).filteredOn(d -> !d.keep()).allSatisfy(d -> assertThat(d.reason())
                .startsWith("over the budget of policy db at local"));
        assertThat(plan.budgets()).containsExactly(new Pruner.BudgetUse("local", "db-1", "db", 6L * chunk, 6L * chunk));
        assertThat(plan.overBudget()).isEmpty();
        // without a budget the retention rule keeps all five
        Pruner.Plan unbounded = pruner.review(keepTenWithin(Long.MAX_VALUE), T0.plus(Duration.ofDays(1)));
        assertThat(removed(unbounded)).isEmpty();
        assertThat(unbounded.budgets().get(0).usedBytes()).isEqualTo(8L * chunk);

        // the budget watch's review: the same decisions for the budgeted VM, none for the others
        assertThat(pruner.reviewBudgets(keepTenWithin(6L * chunk), T0.plus(Duration.ofDays(1))))
                .isEqualTo(plan);
        PolicySet withoutBudgets =
                PolicySet.of(keepTenWithin(1).policies().get(0).withBudgets(Map.of()));
        assertThat(pruner.reviewBudgets(withoutBudgets, T0.plus(Duration.ofDays(1)))
                        .decisions())
                .isEmpty();

        assertThat(pruner.apply(plan.decisions())).isEqualTo(2);
        assertThat(local.manifests("db-1")).extracting(Manifest::id).containsExactly(id(2), id(3), id(4));
    }

    @Test
    void aPinnedPointStaysAndTheNextOldestGoesInstead() {
        Instant now = T0.plus(Duration.ofDays(1));
        local.mark("db-1", id(0), new PointMark(PointMark.Kind.PINNED, "deploy failed", now, Map.of()));
        Pruner pruner = new Pruner(local, Map.of(), Pruner.Locks.NONE);
        Pruner.Plan plan = pruner.review(keepTenWithin(6L * chunk), now);
        // p0 is pinned: p1, p2 go (p0's chunk 0 stays counted)
        assertThat(removed(plan)).containsExactly(id(1), id(2));
        assertThat(plan.overBudget()).isEmpty();
    }

    @Test
    void aNewestPointThatCannotFitIsReportedWithWhatItNeededAndWhatHeldTheRest() {
        Instant now = T0.plus(Duration.ofDays(1));
        local.mark("db-1", id(1), new PointMark(PointMark.Kind.PINNED, "deploy failed", now, Map.of()));
        Pruner pruner = new Pruner(local, Map.of(), Pruner.Locks.NONE);
        // 3 chunks: less than one full point (4); every unprotected point goes, and still it does not fit
        Pruner.Plan plan = pruner.review(keepTenWithin(3L * chunk), now);
        assertThat(removed(plan)).containsExactly(id(0), id(2), id(3));
        assertThat(plan.overBudget()).singleElement().satisfies(o -> {
            assertThat(o.vm()).isEqualTo("db-1");
            assertThat(o.location()).isEqualTo("local");
            assertThat(o.budgetBytes()).isEqualTo(3L * chunk);
            assertThat(o.usedBytes()).isEqualTo(5L * chunk); // p1 and p4 share 3 chunks
            assertThat(o.neededBytes()).isEqualTo(chunk); // p4's own chunk 0
            assertThat(o.fullPointBytes()).isEqualTo(4L * chunk);
            assertThat(o.newestPointId()).isEqualTo(id(4));
            assertThat(o.held()).isEqualTo("1 newest restore point; 1 pinned: deploy failed");
        });
    }

    @Test
    void usageCountsEachDistinctNonZeroChunkOnceAndAShortLastChunkAtItsLength() {
        BudgetUsage usage = new BudgetUsage(local);
        points.forEach(usage::add);
        assertThat(usage.bytes()).isEqualTo(8L * chunk);
        assertThat(usage.own(points.get(4))).isEqualTo(chunk);
        assertThat(usage.alone(points.get(4))).isEqualTo(4L * chunk);
        usage.remove(points.get(0));
        assertThat(usage.bytes()).isEqualTo(7L * chunk);

        // a disk of 1.5 chunks with a zero first chunk: only the half chunk counts
        DiskIndexBuilder index = local.newIndex(chunk + chunk / 2L, Optional.empty());
        byte[] half = Arrays.copyOf(bytes(), chunk / 2);
        index.set(1, local.putChunk(half, chunk / 2).digest());
        Manifest sparse = new Manifest(
                1,
                RestorePointIds.next(T0, random),
                "db-2",
                "hv1",
                "j",
                T0,
                T0,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "db",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda", chunk + chunk / 2L, chunk, index.finish().hex(), "c", Optional.empty(), 0, 0)));
        assertThat(new BudgetUsage(local).alone(sparse)).isEqualTo(chunk / 2);
    }

    @Test
    void theWatchRaisesBudgetExceededOncePerNewestPointThatDoesNotFitAndKeepsTheUseForMetrics() {
        Instant now = T0.plus(Duration.ofDays(1));
        io.tidemark.testkit.RecordingEventBus bus = new io.tidemark.testkit.RecordingEventBus();
        BudgetWatch fits = new BudgetWatch(
                local,
                Map.of(),
                Pruner.Locks.NONE,
                keepTenWithin(6L * chunk),
                java.time.Clock.fixed(now, java.time.ZoneOffset.UTC));
        assertThat(fits.check(bus)).isEmpty();
        assertThat(bus.published()).isEmpty();
        assertThat(fits.uses()).containsExactly(new Pruner.BudgetUse("local", "db-1", "db", 6L * chunk, 6L * chunk));

        BudgetWatch tight = new BudgetWatch(
                local,
                Map.of(),
                Pruner.Locks.NONE,
                keepTenWithin(3L * chunk),
                java.time.Clock.fixed(now, java.time.ZoneOffset.UTC));
        assertThat(tight.check(bus)).hasSize(1);
        assertThat(tight.check(bus)).hasSize(1); // still over, the same newest point: announced once
        assertThat(bus.published()).singleElement().satisfies(p -> {
            assertThat(p.topic()).isEqualTo(io.tidemark.core.bus.Topics.JOB_STATUS);
            assertThat(p.key()).isEqualTo("db-1");
            assertThat(p.event().jobId()).isEqualTo("budget/db-1@local/" + id(4));
            assertThat(p.event().payload())
                    .isEqualTo(new io.tidemark.core.event.BudgetExceeded(
                            "db-1",
                            "local",
                            "db",
                            3L * chunk,
                            4L * chunk,
                            4L * chunk,
                            id(4),
                            "1 newest restore point"));
        });
        // no budget in any policy: nothing measured
        BudgetWatch none = new BudgetWatch(
                local,
                Map.of(),
                Pruner.Locks.NONE,
                PolicySet.of(keepTenWithin(1).policies().get(0).withBudgets(Map.of())),
                java.time.Clock.fixed(now, java.time.ZoneOffset.UTC));
        assertThat(none.check(bus)).isEmpty();
        assertThat(none.uses()).isEmpty();
    }
}
