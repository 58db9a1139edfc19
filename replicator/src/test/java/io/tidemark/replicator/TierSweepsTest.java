package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
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
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryColdStorage;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The engine's rounds of tier sweeps over several targets: a target that is down fails its sweep
 * (counted, kept in the status with the last success) without stopping the others, and is swept
 * again once it answers; nothing runs while no policy's tiers name a storage class.
 */
class TierSweepsTest {

    private static final Instant NOW = Instant.parse("2026-12-01T00:00:00Z");
    private final FakeClock clock = new FakeClock(NOW);
    private final Random random = new Random(3);
    private final InMemoryColdStorage upStore = new InMemoryColdStorage(clock, Duration.ofHours(5));
    private final InMemoryColdStorage downStore = new InMemoryColdStorage(clock, Duration.ofHours(5));
    private final Flaky down = new Flaky(downStore);

    private static Policy tiered(String... locations) {
        Policy p = Policy.of(
                "db",
                VmSelector.ofNames("db-1"),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of(locations));
        List<Tier> tiers = new java.util.ArrayList<>();
        for (String l : locations) {
            tiers.add(new Tier(l + "-warm", l, Optional.empty(), Duration.ofDays(30)));
            tiers.add(new Tier(l + "-cold", l, Optional.of("GLACIER"), Duration.ofDays(365)));
        }
        return p.withTiers(new Tiers(tiers));
    }

    private void oldPoint(ObjectTarget target) {
        Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
        byte[] data = new byte[4096];
        random.nextBytes(data);
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(chunk, Optional.empty());
        index.set(0, repo.putChunk(data, data.length).digest());
        Instant at = NOW.minus(Duration.ofDays(60));
        repo.commit(new Manifest(
                1,
                RestorePointIds.next(at, random),
                "db-1",
                "hv1",
                "j",
                at,
                at,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "db",
                Optional.empty(),
                List.of(new DiskEntry("sda", chunk, chunk, index.finish().hex(), "c", Optional.empty(), 0, 0))));
    }

    @Test
    void aTargetThatIsDownFailsItsSweepAloneAndIsSweptOnceItAnswers() {
        oldPoint(upStore);
        oldPoint(downStore);
        TierSweeps sweeps = new TierSweeps(
                Map.of("up", upStore, "down", down),
                Repository::open,
                PolicySet.of(tiered("up", "down")),
                clock,
                "test engine",
                TierSweep.Settings.DEFAULT);
        assertThat(sweeps.active()).isTrue();

        down.down = true;
        sweeps.round();
        sweeps.round(); // a second failure: counted, not logged again
        Map<String, TierSweeps.Status> byTarget = byTarget(sweeps);
        assertThat(byTarget.get("up").lastError()).isEmpty();
        assertThat(byTarget.get("up").taggedTotal()).isEqualTo(1);
        assertThat(byTarget.get("down").lastError())
                .hasValueSatisfying(e -> assertThat(e).contains("unreachable"));
        assertThat(byTarget.get("down").failures()).isEqualTo(2);
        assertThat(byTarget.get("down").lastSuccess()).isEmpty();
        String metrics = sweeps.metrics();
        assertThat(metrics).contains("tidemark_tier_sweep_ok{target=\"down\"} 0");
        assertThat(metrics).contains("tidemark_tier_sweep_failures_total{target=\"down\"} 2");
        assertThat(metrics).contains("tidemark_tier_sweep_ok{target=\"up\"} 1");
        assertThat(metrics).contains("tidemark_tier_chunks_tagged_total{target=\"up\"} 1");

        down.down = false;
        clock.advance(Duration.ofHours(1));
        sweeps.round();
        byTarget = byTarget(sweeps);
        assertThat(byTarget.get("down").lastError()).isEmpty();
        assertThat(byTarget.get("down").lastSuccess()).contains(NOW.plus(Duration.ofHours(1)));
        assertThat(byTarget.get("down").taggedTotal()).isEqualTo(1);
        assertThat(byTarget.get("up").last().orElseThrow().tagReads()).isZero(); // the ledger
    }

    @Test
    void nothingRunsWhileNoPolicyHasTiersWithAStorageClass() {
        oldPoint(upStore);
        Policy untiered = Policy.of(
                "db",
                VmSelector.ofNames("db-1"),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of("up"));
        TierSweeps sweeps = new TierSweeps(
                Map.of("up", upStore),
                Repository::open,
                PolicySet.of(untiered),
                clock,
                "e",
                TierSweep.Settings.DEFAULT);
        assertThat(sweeps.active()).isFalse();
        sweeps.round();
        assertThat(sweeps.statuses()).isEmpty();
        assertThat(sweeps.metrics()).isEmpty();
        assertThat(upStore.tagReads()).isZero();

        sweeps.setPolicies(PolicySet.of(tiered("up"))); // a reload that adds tiers
        assertThat(sweeps.active()).isTrue();
        sweeps.round();
        assertThat(sweeps.statuses()).singleElement().satisfies(s -> assertThat(s.taggedTotal())
                .isEqualTo(1));
    }

    private static Map<String, TierSweeps.Status> byTarget(TierSweeps sweeps) {
        Map<String, TierSweeps.Status> out = new java.util.HashMap<>();
        sweeps.statuses().forEach(s -> out.put(s.target(), s));
        return out;
    }

    /** A target that fails every call, as an unreachable endpoint past its retry deadline does, while {@code down}. */
    private static final class Flaky implements ObjectTarget, ColdStorage {
        private final InMemoryColdStorage inner;
        volatile boolean down;

        Flaky(InMemoryColdStorage inner) {
            this.inner = inner;
        }

        private void check() {
            if (down) {
                throw new RetriableException("target down: endpoint unreachable past its retry deadline");
            }
        }

        @Override
        public String describe() {
            return "flaky";
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            check();
            return inner.putIfAbsent(key, data);
        }

        @Override
        public Optional<byte[]> get(String key) {
            check();
            return inner.get(key);
        }

        @Override
        public boolean exists(String key) {
            check();
            return inner.exists(key);
        }

        @Override
        public List<String> list(String prefix) {
            check();
            return inner.list(prefix);
        }

        @Override
        public void delete(String key) {
            check();
            inner.delete(key);
        }

        @Override
        public void close() {}

        @Override
        public Placement placement(String key) {
            check();
            return inner.placement(key);
        }

        @Override
        public void requestRestore(String key, int days) {
            check();
            inner.requestRestore(key, days);
        }

        @Override
        public void rewarm(String key) {
            check();
            inner.rewarm(key);
        }

        @Override
        public void tagTier(String key, Optional<String> storageClass) {
            check();
            inner.tagTier(key, storageClass);
        }

        @Override
        public Optional<String> tierTag(String key) {
            check();
            return inner.tierTag(key);
        }
    }
}
