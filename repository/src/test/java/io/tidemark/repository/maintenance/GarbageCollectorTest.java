package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GarbageCollectorTest {

    static final RepositoryConfig CONFIG =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 4);
    static final Duration GRACE = Duration.ofHours(24);

    final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T00:00:00Z"));
    InMemoryObjectTarget memory;
    Intercepting target;
    Repository repo;
    Points points;

    @BeforeEach
    void setUp() {
        memory = new InMemoryObjectTarget("gc");
        target = new Intercepting(memory);
        repo = Repository.openOrInit(target, CONFIG);
        points = new Points(repo, "vm1", 16, 42);
    }

    GarbageCollector gc(Duration writerWait) {
        return new GarbageCollector(
                repo,
                clock,
                new GarbageCollector.Settings(GRACE, Duration.ofHours(6), writerWait, Duration.ofHours(48)));
    }

    GarbageCollector.Result run() {
        return gc(Duration.ZERO).run(false, Restorer.Progress.NONE);
    }

    /**
     * A full point of 4 chunks, pruned, beside a kept one, and one collection run ago by more than
     * the grace period: its 4 chunks, page and root are due for the next run's sweep.
     */
    Points.Pending prunedPointDueForSweep() {
        Points.Pending old = points.full(4);
        points.full(4);
        prune(old);
        run();
        clock.advance(GRACE.plusHours(1));
        return old;
    }

    void prune(Points.Pending p) {
        target.delete(ObjectKeys.manifest("vm1", p.manifest().id()));
    }

    @Test
    void anUnreferencedObjectIsSweptOnlyAfterItWasACandidateForTheGracePeriod(@TempDir Path tmp) {
        Points.Pending old = points.full(8);
        Points.Pending kept = points.full(8); // all new random data: shares nothing with old
        prune(old);
        List<String> oldChunks = chunksOf(old);

        GarbageCollector.Result first = run();
        assertThat(first.swept()).isEmpty();
        assertThat(first.candidates()).isEqualTo(8 + 2 + 1); // 8 chunks, 2 pages, 1 root

        clock.advance(GRACE.minusMinutes(1));
        assertThat(run().swept()).isEmpty();
        assertThat(memory.keys()).containsAll(oldChunks);

        clock.advance(Duration.ofMinutes(1));
        GarbageCollector.Result due = run();
        assertThat(due.swept(ObjectKeys.CHUNKS)).isEqualTo(8);
        assertThat(due.swept(ObjectKeys.PAGES)).isEqualTo(2);
        assertThat(due.swept(ObjectKeys.ROOTS)).isEqualTo(1);
        assertThat(memory.keys()).doesNotContainAnyElementsOf(oldChunks);
        assertThat(due.candidates()).isZero();
        assertRestores(kept, tmp);
    }

    @Test
    void chunksSharedWithAKeptPointAreNeverCandidates(@TempDir Path tmp) {
        Points.Pending base = points.full(8);
        Points.Pending child = points.incremental(base, List.of(1));
        prune(base);
        run();
        clock.advance(GRACE.plusHours(1));
        GarbageCollector.Result r = run();
        assertThat(r.swept(ObjectKeys.CHUNKS)).isEqualTo(1); // only the chunk child rewrote
        assertThat(r.swept(ObjectKeys.PAGES)).isEqualTo(1); // only the page holding it
        assertRestores(child, tmp);
    }

    @Test
    void theObjectsOfAnInFlightPointSurviveTheGracePeriodAndAreKeptOnceCommitted(@TempDir Path tmp) {
        points.full(4);
        Points.Pending inFlight = points.write(Optional.empty(), List.of(8, 9, 10));
        GarbageCollector.Result first = run();
        assertThat(first.candidates()).isEqualTo(3 + 1 + 1); // 3 chunks, the page holding them, the root
        clock.advance(GRACE.minusMinutes(1));
        assertThat(run().swept()).isEmpty();
        points.commit(inFlight); // referenced again before it was due
        clock.advance(Duration.ofHours(2));
        GarbageCollector.Result later = run();
        assertThat(later.swept()).isEmpty();
        assertThat(later.candidates()).isZero();
        assertRestores(inFlight, tmp);
    }

    @Test
    void aPointCommittedBetweenMarkAndSweepKeepsItsObjects(@TempDir Path tmp) {
        points.full(4);
        Points.Pending late = points.write(Optional.empty(), List.of(8, 9));
        run();
        clock.advance(GRACE.plusHours(1));
        // a writer commits right after the collector announced its sweep, before the second mark
        target.afterPut = key -> {
            if (key.startsWith(WriteLease.SWEEPS)) {
                target.afterPut = k -> {};
                points.commit(late);
            }
        };
        GarbageCollector.Result r = run();
        assertThat(r.swept()).isEmpty();
        assertThat(r.referencedAgain()).isEqualTo(4); // 2 chunks, 1 page, 1 root
        assertRestores(late, tmp);
    }

    @Test
    void aLiveWriterLeasePutsTheSweepOffAndAWriterWaitsForARunningSweep() {
        Points.Pending old = prunedPointDueForSweep();
        try (WriteLease writer = WriteLease.acquire(target, clock, "backup of vm1")) {
            GarbageCollector.Result r = run();
            assertThat(r.swept()).isEmpty();
            assertThat(r.deferred()).get().asString().contains("backup of vm1");
            assertThat(memory.keys()).containsAll(chunksOf(old));
        }
        // while a sweep is announced, a new writer does not start
        target.afterPut = key -> {
            if (key.startsWith(WriteLease.SWEEPS)) {
                target.afterPut = k -> {};
                assertThatThrownBy(() -> WriteLease.acquire(
                                target, clock, "replication of vm1", Duration.ofHours(1), Duration.ZERO))
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining("sweeping");
            }
        };
        GarbageCollector.Result r = run();
        assertThat(r.swept(ObjectKeys.CHUNKS)).isEqualTo(4);
        assertThat(memory.keys()).noneMatch(k -> k.startsWith(WriteLease.PREFIX) || k.startsWith(WriteLease.SWEEPS));
    }

    @Test
    void aWriterWhoseClockRunsADayAheadStillKeepsOutOfARunningSweep() {
        prunedPointDueForSweep();
        // the announcement expires 6 h after the collector's now: long past by the writer's clock
        FakeClock writerClock = new FakeClock(clock.instant().plus(Duration.ofDays(1)));
        boolean[] tried = {false};
        target.afterPut = key -> {
            if (key.startsWith(WriteLease.SWEEPS)) {
                target.afterPut = k -> {};
                tried[0] = true;
                assertThatThrownBy(() -> WriteLease.acquire(
                                target, writerClock, "backup of vm2", Duration.ofHours(1), Duration.ZERO))
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining("sweeping");
            }
        };
        assertThat(run().swept(ObjectKeys.CHUNKS)).isEqualTo(4);
        assertThat(tried[0]).isTrue();
    }

    @Test
    void anAnnouncementACrashedSweepLeftIsIgnoredAfterItsLifetimeAndRemovedByTheNextCollection() {
        GcLock crashed = GcLock.acquire(target, clock, Duration.ofHours(6), "gc that crashed mid-sweep");
        String left = WriteLease.SWEEPS + crashed.epochKey() + ".json";
        // dated by a collector whose clock was far behind: its own expiry says nothing to writers
        target.putIfAbsent(left, Leases.encode("gc sweep", Instant.EPOCH, Instant.EPOCH.plus(Duration.ofHours(6))));
        FakeClock writerClock = new FakeClock(clock.instant());
        assertThat(WriteLease.sweeping(target, writerClock)).isTrue(); // first seen now: live for 6 h
        writerClock.advance(Duration.ofHours(5));
        assertThat(WriteLease.sweeping(target, writerClock)).isTrue();
        writerClock.advance(Duration.ofHours(1));
        assertThat(WriteLease.sweeping(target, writerClock)).isFalse();
        // the next collection takes the stale lock over, and so knows that sweep is over
        clock.advance(Duration.ofHours(7));
        run();
        assertThat(memory.keys()).noneMatch(k -> k.startsWith(WriteLease.SWEEPS));
    }

    @Test
    void aWriterLeaseSeenByCollectionsForItsTtlIsStaleAndNoLongerBlocks() {
        Points.Pending old = points.full(4);
        points.full(4);
        prune(old);
        // a crashed writer: its lease is never closed, and its own clock is far behind
        WriteLease.acquire(
                target,
                java.time.Clock.fixed(Instant.EPOCH, java.time.ZoneOffset.UTC),
                "crashed backup",
                Duration.ofHours(1),
                Duration.ZERO);
        run();
        clock.advance(GRACE.plusHours(1));
        GarbageCollector.Result blocked = run();
        assertThat(blocked.swept()).isEmpty();
        assertThat(blocked.deferred()).get().asString().contains("crashed backup");
        clock.advance(Duration.ofHours(24)); // seen for 49 h now
        assertThat(run().swept(ObjectKeys.CHUNKS)).isEqualTo(4);
    }

    @Test
    void twoCollectionsDoNotRunAtOnceAndAStaleLockIsTakenOver() {
        GcLock held = GcLock.acquire(target, clock, Duration.ofHours(6), "gc A");
        assertThatThrownBy(this::run)
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("gc A")
                .hasMessageContaining("holds the lock");
        clock.advance(Duration.ofHours(7));
        GcLock taker = GcLock.acquire(target, clock, Duration.ofHours(6), "gc B");
        assertThat(held.stillHeld()).isFalse();
        assertThat(taker.stillHeld()).isTrue();
        taker.close();
        assertThat(run().dryRun()).isFalse(); // released: the next run takes it
    }

    @Test
    void anUnreadablePageStopsCollectionBeforeAnythingIsDeleted() {
        Points.Pending old = points.full(4);
        Points.Pending kept = points.full(4);
        prune(old);
        run();
        clock.advance(GRACE.plusHours(1));
        String page = memory.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.PAGES))
                .filter(k -> !pagesOf(old).contains(k))
                .filter(pagesOf(kept)::contains)
                .findFirst()
                .orElseThrow();
        memory.delete(page);
        List<String> before = memory.keys();
        assertThatThrownBy(this::run)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(page)
                .hasMessageContaining("tidemark verify");
        assertThat(memory.keys())
                .containsAll(before.stream()
                        .filter(k -> !k.startsWith(ObjectKeys.STATE))
                        .toList());
    }

    @Test
    void aDryRunNamesWhatIsDueAndChangesNothing() {
        Points.Pending old = prunedPointDueForSweep();
        List<String> before = memory.keys();
        GarbageCollector.Result r = gc(Duration.ZERO).run(true, Restorer.Progress.NONE);
        assertThat(r.dryRun()).isTrue();
        assertThat(r.swept()).containsAll(chunksOf(old)).hasSize(4 + 1 + 1);
        assertThat(memory.keys()).isEqualTo(before);
    }

    @Test
    void objectsUnderAnImmutabilityLockAreKept() {
        prunedPointDueForSweep();
        target.locks = key -> Optional.of(clock.instant().plus(Duration.ofDays(30)));
        GarbageCollector.Result r = run();
        assertThat(r.swept()).isEmpty();
        assertThat(r.locked()).isEqualTo(6);
    }

    private List<String> chunksOf(Points.Pending p) {
        return points.chunkKeys(p);
    }

    private List<String> pagesOf(Points.Pending p) {
        return repo
                .root(io.tidemark.format.Digest.fromHex(
                        p.manifest().disks().get(0).index()))
                .pages()
                .stream()
                .map(ObjectKeys::page)
                .toList();
    }

    private void assertRestores(Points.Pending p, Path tmp) {
        try {
            Path out = tmp.resolve(p.manifest().id() + ".raw");
            Restorer.Result r =
                    new Restorer(repo, 2).restoreDisk(p.manifest(), Points.DISK, out, Restorer.Progress.NONE);
            assertThat(r.sha256()).isEqualTo(Points.sha256(p.image()));
            assertThat(Files.size(out)).isEqualTo(p.image().length);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
