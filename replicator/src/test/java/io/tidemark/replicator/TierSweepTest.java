package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
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
 * Tier tags at one location ({@code offsite}) whose chunks several points share: db-1 (tiers warm
 * 30 d, then GLACIER 1 y) has an old point A and a young point B; web-1 (no tiers) has an old
 * point sharing one chunk with A.
 */
class TierSweepTest {

    private static final Instant NOW = Instant.parse("2026-12-01T00:00:00Z");
    private final FakeClock clock = new FakeClock(NOW);
    private final InMemoryColdStorage store = new InMemoryColdStorage(clock, Duration.ofHours(5));
    private final Repository offsite = Repository.openOrInit(store, RepositoryConfig.defaults());
    private final int chunk = offsite.config().chunkSize();
    private final Random random = new Random(7);

    private final byte[] onlyA = bytes();
    private final byte[] sharedAB = bytes();
    private final byte[] sharedWithWeb = bytes();
    private final byte[] onlyB = bytes();
    private final byte[] onlyWeb = bytes();

    private byte[] bytes() {
        byte[] b = new byte[4096];
        random.nextBytes(b);
        return b;
    }

    private Digest put(byte[] data) {
        return offsite.putChunk(data, data.length).digest();
    }

    private Manifest point(String vm, String policy, Instant at, byte[]... chunks) {
        DiskIndexBuilder index = offsite.newIndex((long) chunks.length * chunk, Optional.empty());
        for (int i = 0; i < chunks.length; i++) {
            index.set(i, put(chunks[i]));
        }
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(at, random),
                vm,
                "hv1",
                "j-" + at,
                at,
                at,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                policy,
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda",
                        (long) chunks.length * chunk,
                        chunk,
                        index.finish().hex(),
                        "c",
                        Optional.empty(),
                        0,
                        0)));
        offsite.commit(m);
        return m;
    }

    private static Policy policy(String name, String vm) {
        return Policy.of(
                name,
                VmSelector.ofNames(vm),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of("offsite"));
    }

    private final PolicySet policies = PolicySet.of(
            policy("db", "db-1")
                    .withTiers(new Tiers(List.of(
                            new Tier("warm", "offsite", Optional.empty(), Duration.ofDays(30)),
                            new Tier("cold", "offsite", Optional.of("GLACIER"), Duration.ofDays(365))))),
            policy("web", "web-1"));

    @Test
    void aChunkMovesOnlyWhenEveryPointThatNeedsItAllowsIt() throws InterruptedException {
        Manifest a = point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA, sharedAB, sharedWithWeb);
        point("db-1", "db", NOW.minus(Duration.ofDays(1)), onlyB, sharedAB);
        point("web-1", "web", NOW.minus(Duration.ofDays(60)), sharedWithWeb, onlyWeb);
        TierSweep sweep = new TierSweep("offsite", offsite, store);

        Map<String, Optional<String>> plan = sweep.plan(policies, NOW);
        assertThat(plan).hasSize(5);
        assertThat(plan).containsEntry(key(onlyA), Optional.of("GLACIER"));
        assertThat(plan).containsEntry(key(sharedAB), Optional.empty()); // young B needs it
        assertThat(plan).containsEntry(key(sharedWithWeb), Optional.empty()); // web-1 has no tiers
        assertThat(plan).containsEntry(key(onlyB), Optional.empty());

        TierSweep.Report report = sweep.run(policies, NOW);
        assertThat(report.tagged()).isEqualTo(Map.of("GLACIER", 1));
        assertThat(sweep.run(policies, NOW).tagged()).isEmpty(); // idempotent
        assertThat(store.runLifecycle("chunks/")).isEqualTo(1);

        // manifests and indexes stay readable: listing works, A's archived chunk does not
        assertThat(offsite.manifests("db-1")).hasSize(2);
        assertThat(TierSweep.chunkKeys(offsite, a))
                .containsExactlyInAnyOrder(key(onlyA), key(sharedAB), key(sharedWithWeb));
        assertThatThrownBy(() -> offsite.chunk(Digest.fromHex(digest(onlyA)), onlyA.length))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("InvalidObjectState");
    }

    @Test
    void aNewPointThatNeedsAnArchivedChunkUntagsItAndReportsTheRewarm() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA);
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        sweep.run(policies, NOW);
        store.runLifecycle("chunks/");

        point("db-1", "db", NOW, onlyA); // the same content again: deduplicated, already in GLACIER
        TierSweep.Report report = sweep.run(policies, NOW);
        assertThat(report.untagged()).isEqualTo(1);
        assertThat(report.rewarm()).containsExactly(key(onlyA));
        assertThat(store.tierTag(key(onlyA))).isEmpty();
    }

    @Test
    void expiredPointsDoNotHoldChunksBack() {
        point("db-1", "db", NOW.minus(Duration.ofDays(30 + 365 + 1)), sharedAB); // past its last tier
        point("db-1", "db", NOW.minus(Duration.ofDays(40)), sharedAB);
        assertThat(new TierSweep("offsite", offsite, store).plan(policies, NOW))
                .containsEntry(key(sharedAB), Optional.of("GLACIER"));
    }

    private String digest(byte[] data) {
        return put(data).hex();
    }

    private String key(byte[] data) {
        return ObjectKeys.chunk(put(data));
    }
}
