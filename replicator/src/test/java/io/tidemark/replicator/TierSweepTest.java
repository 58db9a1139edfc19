package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
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
import io.tidemark.repository.maintenance.EpochLock;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryColdStorage;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
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
    void anArchivedChunkANewPointNeedsIsRestoredThenCopiedBackByTheNextSweep() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA);
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        sweep.run(policies, NOW);
        store.runLifecycle("chunks/");

        point("db-1", "db", NOW, onlyA); // the same content again: deduplicated, already in GLACIER
        TierSweep.Report report = sweep.run(policies, NOW);
        assertThat(report.untagged()).isEqualTo(1);
        assertThat(report.rewarm()).containsExactly(key(onlyA));
        assertThat(report.restoresRequested()).isEqualTo(1);
        assertThat(store.tierTag(key(onlyA))).isEmpty();

        // still restoring: nothing new asked, nothing copied, still reported
        clock.advance(Duration.ofHours(1));
        TierSweep.Report restoring = sweep.run(policies, NOW);
        assertThat(restoring.restoresRequested()).isZero();
        assertThat(restoring.rewarm()).containsExactly(key(onlyA));

        // restored: copied back to the written class, readable for good
        clock.advance(Duration.ofHours(5));
        TierSweep.Report done = sweep.run(policies, NOW);
        assertThat(done.rewarmed()).isEqualTo(1);
        assertThat(done.rewarm()).isEmpty();
        assertThat(store.rewarms()).isEqualTo(1);
        clock.advance(Duration.ofDays(30)); // long after the restored copy would have expired
        assertThat(store.placement(key(onlyA)).storageClass()).isEqualTo("STANDARD");
        assertThat(offsite.chunk(Digest.fromHex(digest(onlyA)), onlyA.length)).isEqualTo(onlyA);
        assertThat(sweep.run(policies, NOW).rewarm()).isEmpty();
    }

    @Test
    void aRewarmThatFailsForOneChunkIsReportedAndTheSweepStillFinishes() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA, onlyB);
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        sweep.run(policies, NOW);
        store.runLifecycle("chunks/");
        point("db-1", "db", NOW, onlyA, onlyB); // both needed warm again, both archived
        String failing = key(onlyA);
        ColdStorage refusing = new DyingStore(store, Integer.MAX_VALUE) {
            @Override
            public void requestRestore(String key, int days) {
                if (key.equals(failing)) {
                    throw new io.tidemark.core.RetriableException("HTTP 503 SlowDown");
                }
                super.requestRestore(key, days);
            }
        };
        TierSweep.Report r = new TierSweep("offsite", offsite, refusing).run(policies, NOW);
        assertThat(r.untagged()).isEqualTo(2);
        assertThat(r.restoresRequested()).isEqualTo(1);
        assertThat(r.rewarmFailures())
                .singleElement()
                .satisfies(f -> assertThat(f).startsWith(failing).contains("SlowDown"));
        assertThat(r.rewarm()).containsExactlyInAnyOrder(key(onlyA), key(onlyB)); // both still pending
        // the ledger was written and keeps the failed one pending: the next sweep asks again
        assertThat(sweep.run(policies, NOW).restoresRequested()).isEqualTo(1);
    }

    @Test
    void aRepeatSweepWithNothingChangedReadsNoTag() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA, sharedAB, sharedWithWeb);
        point("db-1", "db", NOW.minus(Duration.ofDays(1)), onlyB, sharedAB);
        point("web-1", "web", NOW.minus(Duration.ofDays(60)), sharedWithWeb, onlyWeb);
        TierSweep sweep = new TierSweep("offsite", offsite, store);

        TierSweep.Report first = sweep.run(policies, NOW);
        assertThat(first.tagReads()).isEqualTo(5);
        assertThat(first.fullRead()).isEqualTo("no ledger");
        int before = store.tagReads();
        TierSweep.Report second = sweep.run(policies, NOW.plus(Duration.ofHours(1)));
        assertThat(store.tagReads() - before).isZero();
        assertThat(second.tagReads()).isZero();
        assertThat(second.fullRead()).isEmpty();

        // one new point: only its chunk the ledger has not seen is read
        byte[] fresh = bytes();
        point("db-1", "db", NOW, onlyB, fresh);
        assertThat(sweep.run(policies, NOW.plus(Duration.ofHours(2))).tagReads())
                .isEqualTo(1);
    }

    @Test
    void aNewPointSharingAChunkTheLedgerKnowsAsColdUntagsIt() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA, sharedAB);
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        assertThat(sweep.run(policies, NOW).tagged()).isEqualTo(Map.of("GLACIER", 2));

        point("db-1", "db", NOW, sharedAB); // young: needs sharedAB where it was written
        TierSweep.Report report = sweep.run(policies, NOW.plus(Duration.ofHours(1)));
        assertThat(report.untagged()).isEqualTo(1);
        assertThat(report.tagReads()).isEqualTo(1); // the changed decision, not every chunk
        assertThat(store.tierTag(key(sharedAB))).isEmpty();
        assertThat(store.tierTag(key(onlyA))).contains("GLACIER");
    }

    @Test
    void aSweepThatDiedAfterTaggingLeavesTheLedgerUntrusted() {
        Instant t0 = NOW.minus(Duration.ofDays(40));
        point("db-1", "db", t0.minus(Duration.ofDays(20)), onlyA, sharedAB); // warm at t0, cold 15 d later
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        assertThat(sweep.run(policies, t0).tagged()).isEmpty(); // ledger: both chunks untagged

        // 15 days on both turn cold; the sweep dies after its first tag, before writing its ledger
        Instant later = t0.plus(Duration.ofDays(15));
        DyingStore dying = new DyingStore(store, 1);
        assertThatThrownBy(() -> new TierSweep("offsite", offsite, dying).run(policies, later))
                .isInstanceOf(io.tidemark.core.RetriableException.class);
        String taggedBeforeDeath = store.tierTag(key(onlyA)).isPresent() ? key(onlyA) : key(sharedAB);
        assertThat(store.tierTag(taggedBeforeDeath)).contains("GLACIER");

        // a young point now needs both: the ledger (both untagged) must not be believed
        point("db-1", "db", later, onlyA, sharedAB);
        TierSweep.Report report = sweep.run(policies, later.plus(Duration.ofHours(1)));
        assertThat(report.fullRead()).contains("did not finish");
        assertThat(store.tierTag(key(onlyA))).isEmpty();
        assertThat(store.tierTag(key(sharedAB))).isEmpty();
    }

    @Test
    void aStaleLedgerIsNotTrusted() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA);
        TierSweep sweep = new TierSweep("offsite", offsite, store);
        sweep.run(policies, NOW);
        TierSweep.Report late = sweep.run(
                policies, NOW.plus(TierSweep.Settings.DEFAULT.ledgerMaxGap()).plusSeconds(1));
        assertThat(late.tagReads()).isEqualTo(1);
        assertThat(late.fullRead()).contains("older than");
    }

    @Test
    void aSecondSweepOfOneLocationIsRefusedWhileTheFirstHoldsTheLock() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA);
        try (EpochLock held = EpochLock.acquire(
                store, TierSweep.LOCK, "tier sweep", Clock.systemUTC(), Duration.ofMinutes(10), "cli")) {
            assertThatThrownBy(() -> new TierSweep("offsite", offsite, store).run(policies, NOW))
                    .isInstanceOf(io.tidemark.core.RetriableException.class)
                    .hasMessageContaining("another tier sweep")
                    .hasMessageContaining("cli");
            assertThat(store.tierTag(key(onlyA))).isEmpty();
        }
        assertThat(new TierSweep("offsite", offsite, store).run(policies, NOW).tagged())
                .isEqualTo(Map.of("GLACIER", 1));
    }

    @Test
    void aDeadSweepsLockIsTakenOverWhenItsShortLeaseEnds() {
        point("db-1", "db", NOW.minus(Duration.ofDays(60)), onlyA);
        Instant realNow = Instant.now();
        EpochLock.acquire( // a sweep killed mid-way: never released, its lease ended a minute ago
                store,
                TierSweep.LOCK,
                "tier sweep",
                Clock.fixed(realNow.minus(Duration.ofMinutes(11)), ZoneOffset.UTC),
                Duration.ofMinutes(10),
                "killed engine");
        assertThat(new TierSweep("offsite", offsite, store).run(policies, NOW).tagged())
                .isEqualTo(Map.of("GLACIER", 1));
    }

    @Test
    void aLongSweepRenewsItsLeaseSoNoOneTakesItOver() {
        for (int i = 0; i < 4; i++) {
            point("db-1", "db", NOW.minus(Duration.ofDays(60 + i)), bytes());
        }
        FakeClock lockClock = new FakeClock(Instant.now());
        TierSweep.Settings s = TierSweep.Settings.DEFAULT;
        // every tag read takes 4 min of the lease clock: the 10 min lease would end mid-sweep without renewal
        ColdStorage slow = new DyingStore(store, Integer.MAX_VALUE) {
            @Override
            public Optional<String> tierTag(String key) {
                lockClock.advance(Duration.ofMinutes(4));
                assertThatThrownBy(() ->
                                EpochLock.acquire(store, TierSweep.LOCK, "tier sweep", lockClock, s.lockTtl(), "rival"))
                        .hasMessageContaining("another tier sweep");
                return super.tierTag(key);
            }
        };
        assertThat(new TierSweep("offsite", offsite, slow, lockClock, "engine", s)
                        .run(policies, NOW)
                        .tagged())
                .isEqualTo(Map.of("GLACIER", 4));
    }

    /** The archive model, failing (as a killed process would stop) after {@code tagsBeforeDeath} tag writes. */
    private static class DyingStore implements ColdStorage {
        private final InMemoryColdStorage inner;
        private int left;

        DyingStore(InMemoryColdStorage inner, int tagsBeforeDeath) {
            this.inner = inner;
            this.left = tagsBeforeDeath;
        }

        @Override
        public Placement placement(String key) {
            return inner.placement(key);
        }

        @Override
        public void requestRestore(String key, int days) {
            inner.requestRestore(key, days);
        }

        @Override
        public void rewarm(String key) {
            inner.rewarm(key);
        }

        @Override
        public void tagTier(String key, Optional<String> storageClass) {
            if (left-- <= 0) {
                throw new io.tidemark.core.RetriableException("killed");
            }
            inner.tagTier(key, storageClass);
        }

        @Override
        public Optional<String> tierTag(String key) {
            return inner.tierTag(key);
        }
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
