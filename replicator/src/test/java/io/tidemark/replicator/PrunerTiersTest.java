package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.Tier;
import io.tidemark.policies.Tiers;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Prune removes a point once it is past the last tier of its location (ADR 20). */
class PrunerTiersTest {

    private static final Instant T0 = Instant.parse("2026-11-20T00:00:00Z");
    private final Repository local =
            Repository.openOrInit(new InMemoryObjectTarget("local"), RepositoryConfig.defaults());
    private final Random random = new Random(5);

    private void fiveDailyPoints() {
        int chunk = local.config().chunkSize();
        for (int i = 0; i < 5; i++) {
            byte[] data = new byte[chunk];
            random.nextBytes(data);
            DiskIndexBuilder index = local.newIndex(chunk, Optional.empty());
            index.set(0, local.putChunk(data, chunk).digest());
            Instant at = T0.plus(Duration.ofDays(i));
            local.commit(new Manifest(
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
                            "sda", chunk, chunk, index.finish().hex(), "c" + i, Optional.empty(), 0, 0))));
        }
    }

    private static Policy db() {
        return Policy.of(
                "db",
                VmSelector.ofNames("db-1"),
                Schedule.Interval.every(Duration.ofDays(1)),
                Duration.ofDays(2),
                List.of());
    }

    @Test
    void pointsPastTheLastTierOfTheirLocationArePruned() {
        fiveDailyPoints();
        Instant now = T0.plus(Duration.ofDays(4)).plus(Duration.ofHours(1));
        PolicySet tiered = PolicySet.of(
                db().withTiers(new Tiers(List.of(new Tier("hot", "local", Optional.empty(), Duration.ofDays(2))))));
        Pruner pruner = new Pruner(local, Map.of(), Pruner.Locks.NONE);

        List<Pruner.Decision> plan = pruner.plan(tiered, now);
        assertThat(plan)
                .extracting(d -> d.capturedAt().toString() + " " + d.keep())
                .containsExactly(
                        "2026-11-20T00:00:00Z false",
                        "2026-11-21T00:00:00Z false",
                        "2026-11-22T00:00:00Z false", // 2 d 1 h old: past the 2 d tier
                        "2026-11-23T00:00:00Z true",
                        "2026-11-24T00:00:00Z true");
        assertThat(pruner.plan(PolicySet.of(db()), now)).allMatch(Pruner.Decision::keep); // no tiers: keep all
    }

    @Test
    void theNewestPointStaysEvenPastTheLastTier() {
        fiveDailyPoints();
        PolicySet tiered = PolicySet.of(
                db().withTiers(new Tiers(List.of(new Tier("hot", "local", Optional.empty(), Duration.ofHours(1))))));
        List<Pruner.Decision> plan =
                new Pruner(local, Map.of(), Pruner.Locks.NONE).plan(tiered, T0.plus(Duration.ofDays(30)));
        assertThat(plan)
                .filteredOn(Pruner.Decision::keep)
                .singleElement()
                .extracting(Pruner.Decision::reason)
                .isEqualTo("newest restore point");
    }
}
