package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReplicatorTest {

    private static final int CHUNK = FormatConstants.DEFAULT_CHUNK_SIZE;
    private static final long DISK = 512L * CHUNK;

    private final InMemoryObjectTarget primaryTarget = new InMemoryObjectTarget("primary");
    private final InMemoryObjectTarget offsite = new InMemoryObjectTarget("offsite");
    private final RecordingEventBus bus = new RecordingEventBus();
    // 16 entries per page: the disk has 32 pages, so "only changed pages" is visible
    private final Repository primary = Repository.openOrInit(
            primaryTarget, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 16));
    private final Replicator replicator =
            new Replicator(primary, Map.<String, ObjectTarget>of("offsite", offsite), bus, Clock.systemUTC(), 4);
    private final Random random = new Random(7);
    private int points;

    @AfterEach
    void close() {
        replicator.close();
    }

    /** Commits a restore point whose listed chunks hold fresh random data, on top of {@code parent}. */
    private Manifest point(Optional<Manifest> parent, List<Integer> chunks) {
        DiskIndexBuilder index = primary.newIndex(
                DISK,
                parent.map(p -> primary.root(Digest.fromHex(p.disks().get(0).index()))));
        for (int c : chunks) {
            byte[] data = new byte[CHUNK];
            random.nextBytes(data);
            index.set(c, primary.putChunk(data, CHUNK).digest());
        }
        Digest root = index.finish();
        Manifest m = new Manifest(
                1,
                "2026112400000" + (points++) + ".000Z-aaaaaa",
                "vm1",
                "hv1",
                "job" + points,
                Instant.now(),
                Instant.now(),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(Manifest::id),
                List.of(new DiskEntry(
                        "sda",
                        DISK,
                        CHUNK,
                        root.hex(),
                        "tm-x",
                        parent.isPresent()
                                ? Optional.empty()
                                : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        0,
                        0)));
        primary.commit(m);
        return m;
    }

    /** Commits a point on {@code parent} where each listed chunk gets a 4 KiB patch at offset 8 KiB (ADR 15). */
    private Manifest patchedPoint(Manifest parent, List<Integer> chunks) {
        return patchedPoint(parent, chunks, false);
    }

    /** As {@link #patchedPoint(Manifest, List)}; with {@code packed}, the patches go into packs (ADR 26). */
    private Manifest patchedPoint(Manifest parent, List<Integer> chunks, boolean packed) {
        DiskIndexBuilder index = primary.newIndex(
                DISK,
                Optional.of(primary.root(Digest.fromHex(parent.disks().get(0).index()))));
        for (int c : chunks) {
            byte[] data = new byte[4096];
            random.nextBytes(data);
            DiskIndexBuilder.Entry was = index.parentEntry(c);
            ChunkPatch patch = was.patch().isNone()
                    ? ChunkPatch.of(was.chunk(), CHUNK, Map.of(8192, data))
                    : primary.patch(was.patch()).with(Map.of(8192, data));
            if (packed) {
                index.setPatched(c, patch);
            } else {
                index.setPatched(c, was.chunk(), primary.putPatch(patch).digest());
            }
        }
        Digest root = index.finish();
        Manifest m = new Manifest(
                1,
                "2026112400000" + (points++) + ".000Z-aaaaaa",
                "vm1",
                "hv1",
                "job" + points,
                Instant.now(),
                Instant.now(),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.of(parent.id()),
                List.of(new DiskEntry("sda", DISK, CHUNK, root.hex(), "tm-x", Optional.empty(), 0, 0)));
        primary.commit(m);
        return m;
    }

    @Test
    void patchesShipWithTheirPointOnlyWhenNewAndTheReplicaRestoresThem(@TempDir Path tmp) {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 3));
        replicator.replicate("vm1", full.id(), "offsite");
        Manifest p1 = patchedPoint(full, List.of(1, 5)); // 5 was zero: a patch on a zero base
        // 2 patches + 1 page (both in page 0) + 1 root + 1 manifest; the bases are there already
        assertThat(replicator.replicate("vm1", p1.id(), "offsite").objectsSent())
                .isEqualTo(5);
        Manifest p2 = patchedPoint(p1, List.of(2));
        // chunk 1's and 5's patches are unchanged: only chunk 2's, its page, the root and the manifest
        assertThat(replicator.replicate("vm1", p2.id(), "offsite").objectsSent())
                .isEqualTo(4);

        assertTheReplicaRestoresAsThePrimary(List.of(p1, p2), tmp);
    }

    @Test
    void aPackShipsOnceForAllTheEntriesThatNameItAndTheReplicaRestoresIt(@TempDir Path tmp) {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 3));
        replicator.replicate("vm1", full.id(), "offsite");
        Manifest p1 = patchedPoint(full, List.of(1, 3, 5), true);
        // one pack for the three patches of page 0 + the page + the root + the manifest
        assertThat(replicator.replicate("vm1", p1.id(), "offsite").objectsSent())
                .isEqualTo(4);
        Manifest p2 = patchedPoint(p1, List.of(2), true);
        // p1's pack is unchanged and still live: only the new pack, the page, the root and the manifest
        assertThat(replicator.replicate("vm1", p2.id(), "offsite").objectsSent())
                .isEqualTo(4);

        assertTheReplicaRestoresAsThePrimary(List.of(p1, p2), tmp);
    }

    private void assertTheReplicaRestoresAsThePrimary(List<Manifest> points, Path tmp) {
        Repository remote = Repository.open(offsite);
        for (Manifest m : points) {
            String here = new Restorer(primary, 2)
                    .restoreDisk(m, "sda", tmp.resolve("primary-" + m.id()), Restorer.Progress.NONE)
                    .sha256();
            String there = new Restorer(remote, 2)
                    .restoreDisk(m, "sda", tmp.resolve("replica-" + m.id()), Restorer.Progress.NONE)
                    .sha256();
            assertThat(there).isEqualTo(here);
        }
    }

    private long chunksOn(InMemoryObjectTarget t) {
        return t.keys().stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)).count();
    }

    @Test
    void shipsEverythingOnceThenOnlyWhatChangedManifestLast() {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 100, 200, 300, 511));
        replicator.handle("tidemark.restore-points", Event.of("j1", Instant.now(), created(full)));
        assertThat(chunksOn(offsite)).isEqualTo(7);
        assertThat(bus.payloads(ReplicaCommitted.class)).singleElement().satisfies(r -> assertThat(r.target())
                .isEqualTo("offsite"));

        Manifest inc = point(Optional.of(full), List.of(5, 400));
        Replicator.Result r = replicator.replicate("vm1", inc.id(), "offsite");
        // 2 chunks + 2 changed pages + 1 root + 1 manifest; the 30 unchanged pages are not even read
        assertThat(r.objectsSent()).isEqualTo(6);
        assertThat(chunksOn(offsite)).isEqualTo(9);

        Repository remote = Repository.open(offsite);
        assertThat(remote.manifests("vm1")).extracting(Manifest::id).containsExactly(full.id(), inc.id());
        assertThat(replicator.replicate("vm1", inc.id(), "offsite").alreadyThere())
                .isTrue();
    }

    @Test
    void aFaultLeavesNoManifestAndAReplicationIsDoneOnce() {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
        offsite.failNext(1, () -> new RetriableException("injected 503"));
        // the target's config is written first; the fault hits it, or a chunk: either way no manifest
        assertThatThrownBy(() -> replicator.replicate("vm1", full.id(), "offsite"))
                .isInstanceOf(RetriableException.class);
        assertThat(offsite.keys()).noneMatch(k -> k.startsWith(ObjectKeys.MANIFESTS));

        Replicator.Result first = replicator.replicate("vm1", full.id(), "offsite");
        assertThat(first.objectsSent()).isGreaterThan(10);
        assertThat(replicator.replicate("vm1", full.id(), "offsite").objectsSent())
                .isZero();
    }

    @Test
    void resumingAfterAPartialUploadSendsOnlyTheRest() {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
        Repository.openOrInit(offsite, primary.config());
        // pretend a killed replicator already uploaded 4 of the chunks
        primaryTarget.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.CHUNKS))
                .limit(4)
                .forEach(k -> offsite.putIfAbsent(k, primaryTarget.get(k).orElseThrow()));
        Replicator.Result r = replicator.replicate("vm1", full.id(), "offsite");
        long pagesRootManifest = r.objectsSent() - 6;
        assertThat(chunksOn(offsite)).isEqualTo(10);
        // page 0 (chunks 0-9) and the one all-zero page shared by pages 1-31, the root, the manifest
        assertThat(pagesRootManifest).isEqualTo(2 + 1 + 1);
    }

    @Test
    void aCorruptChunkInThePrimaryIsNeverShipped() {
        Manifest full = point(Optional.empty(), List.of(3));
        String key = primaryTarget.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.CHUNKS))
                .findFirst()
                .orElseThrow();
        byte[] bad = primaryTarget.get(key).orElseThrow();
        bad[20] ^= 1;
        primaryTarget.delete(key);
        primaryTarget.putIfAbsent(key, bad);
        assertThatThrownBy(() -> replicator.replicate("vm1", full.id(), "offsite"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(key);
        assertThat(offsite.exists(key)).isFalse();
        assertThat(offsite.keys()).noneMatch(k -> k.startsWith(ObjectKeys.MANIFESTS));
    }

    @Test
    void aChildShipsWhenItsParentsManifestIsCorruptOnThePrimary() {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2));
        replicator.replicate("vm1", full.id(), "offsite");
        Manifest inc = point(Optional.of(full), List.of(5));
        // the parent's manifest is damaged on the primary after it reached the target (as SoakIT does)
        String parentKey = ObjectKeys.manifest("vm1", full.id());
        byte[] stored = primaryTarget.get(parentKey).orElseThrow();
        primaryTarget.delete(parentKey);
        primaryTarget.putIfAbsent(parentKey, java.util.Arrays.copyOf(stored, stored.length / 2));

        // a replicator that starts now (the engine restarted) reads the damaged manifest
        try (Replicator restarted = new Replicator(
                Repository.open(primaryTarget),
                Map.<String, ObjectTarget>of("offsite", offsite),
                bus,
                Clock.systemUTC(),
                4)) {
            Replicator.Result r = restarted.replicate("vm1", inc.id(), "offsite");
            assertThat(r.alreadyThere()).isFalse();
        }
        assertThat(Repository.open(offsite).manifests("vm1"))
                .extracting(Manifest::id)
                .containsExactly(full.id(), inc.id());
    }

    @Test
    void anUnknownTargetIsAPermanentErrorNamingIt() {
        Manifest full = point(Optional.empty(), List.of(1));
        assertThatThrownBy(() -> replicator.replicate("vm1", full.id(), "nowhere"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("'nowhere'")
                .hasMessageContaining("offsite");
    }

    @Test
    void aTargetStillFailingAfterItsRetryDeadlineSendsThePointToTheDeadLetterTopic() {
        Manifest full = point(Optional.empty(), List.of(1));
        offsite.failNext(1000, () -> new RetriableException("503 SlowDown, still"));
        assertThatThrownBy(() -> replicator
                        .handlerFor("offsite")
                        .handle("tidemark.restore-points", Event.of("j1", Instant.now(), created(full))))
                .isInstanceOf(PermanentException.class) // so the bus dead-letters it instead of blocking
                .hasMessageContaining("gave up")
                .hasMessageContaining("503 SlowDown");
        assertThat(bus.payloads(io.tidemark.core.event.JobFailed.class))
                .singleElement()
                .satisfies(f -> {
                    assertThat(f.stage()).isEqualTo("replicate");
                    assertThat(f.reason()).contains(io.tidemark.core.event.FailureReason.TARGET_FAILED);
                });
        assertThat(bus.payloads(ReplicaCommitted.class)).isEmpty();
    }

    @Test
    void aPointPrunedBeforeItIsShippedIsNotAnErrorAndIsNotAnnounced() {
        Manifest full = point(Optional.empty(), List.of(1));
        primaryTarget.delete(ObjectKeys.manifest(full.vm(), full.id())); // what prune does to a manifest

        replicator
                .handlerFor("offsite")
                .handle("tidemark.restore-points", Event.of("j1", Instant.now(), created(full)));

        assertThat(replicator.replicate(full.vm(), full.id(), "offsite").pruned())
                .isTrue();
        assertThat(bus.payloads(ReplicaCommitted.class)).isEmpty();
        assertThat(bus.payloads(io.tidemark.core.event.JobFailed.class)).isEmpty();
        assertThat(offsite.list(ObjectKeys.MANIFESTS)).isEmpty();
    }

    private static RestorePointCreated created(Manifest m) {
        return new RestorePointCreated(m.vm(), m.id(), m.policy(), List.of("offsite"), m.capturedAt(), 0, 0);
    }

    /** {@code offsite}, counting the HEADs (exists) asked for chunks. */
    private static class CountingHeads implements ObjectTarget {
        final InMemoryObjectTarget delegate;
        final java.util.concurrent.atomic.AtomicInteger chunkHeads = new java.util.concurrent.atomic.AtomicInteger();
        final java.util.concurrent.atomic.AtomicInteger indexHeads = new java.util.concurrent.atomic.AtomicInteger();

        CountingHeads(InMemoryObjectTarget delegate) {
            this.delegate = delegate;
        }

        @Override
        public String describe() {
            return delegate.describe();
        }

        final java.util.concurrent.atomic.AtomicInteger chunksSentTwice =
                new java.util.concurrent.atomic.AtomicInteger();

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            boolean added = delegate.putIfAbsent(key, data);
            if (!added && key.startsWith(ObjectKeys.CHUNKS)) {
                chunksSentTwice.incrementAndGet();
            }
            return added;
        }

        @Override
        public Optional<byte[]> get(String key) {
            return delegate.get(key);
        }

        @Override
        public boolean exists(String key) {
            if (key.startsWith(ObjectKeys.CHUNKS)) {
                chunkHeads.incrementAndGet();
            }
            if (key.startsWith(ObjectKeys.PAGES) || key.startsWith(ObjectKeys.ROOTS)) {
                indexHeads.incrementAndGet();
            }
            return delegate.exists(key);
        }

        @Override
        public List<String> list(String prefix) {
            return delegate.list(prefix);
        }

        @Override
        public void delete(String key) {
            delegate.delete(key);
        }

        @Override
        public void close() {}
    }

    @Test
    void aFirstCopyStopsAskingTheTargetForChunksOnceItFindsNoneAndAResumedOneSendsOnlyTheRest() {
        List<Integer> chunks = new java.util.ArrayList<>();
        for (int c = 0; c < 200; c++) {
            chunks.add(c);
        }
        Manifest full = point(Optional.empty(), chunks);
        CountingHeads first = new CountingHeads(new InMemoryObjectTarget("first"));
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("first", first), 4)) {
            assertThat(r.replicate("vm1", full.id(), "first").objectsSent()).isGreaterThan(200);
        }
        // a HEAD per chunk until 16 in a row found nothing (a few more race in from the window of 4)
        assertThat(first.chunkHeads.get()).isBetween(Replicator.Probing.MISSES, Replicator.Probing.MISSES + 4);
        assertThat(first.delegate.keys().stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)))
                .hasSize(200);
        assertThat(first.chunksSentTwice.get()).isZero();

        // resumed: 150 of the 200 chunks are there already (a killed replicator sent them)
        CountingHeads resumed = new CountingHeads(new InMemoryObjectTarget("resumed"));
        Repository.openOrInit(resumed.delegate, primary.config());
        primaryTarget.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.CHUNKS))
                .limit(150)
                .forEach(k ->
                        resumed.delegate.putIfAbsent(k, primaryTarget.get(k).orElseThrow()));
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("resumed", resumed), 4)) {
            Replicator.Result result = r.replicate("vm1", full.id(), "resumed");
            // the 50 missing chunks, the pages, the root and the manifest
            assertThat(result.objectsSent()).isBetween(50L, 50L + 20);
        }
        // the 150 there were found by asking: none of them (or at most a window's worth) was sent again
        assertThat(resumed.chunksSentTwice.get()).isLessThanOrEqualTo(4);
        assertThat(resumed.delegate.keys().stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)))
                .hasSize(200);
    }

    /** {@code offsite}, whose first chunk PUT waits until {@code others} other chunks are there. */
    private static final class OneSlowPut extends CountingHeads {
        final java.util.concurrent.CountDownLatch othersDone;
        final java.util.concurrent.atomic.AtomicBoolean slowTaken = new java.util.concurrent.atomic.AtomicBoolean();
        volatile boolean othersWentPastTheSlowOne;

        OneSlowPut(InMemoryObjectTarget delegate, int others) {
            super(delegate);
            this.othersDone = new java.util.concurrent.CountDownLatch(others);
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            if (key.startsWith(ObjectKeys.CHUNKS) && slowTaken.compareAndSet(false, true)) {
                try {
                    othersWentPastTheSlowOne = othersDone.await(20, java.util.concurrent.TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted", e);
                }
                return super.putIfAbsent(key, data);
            }
            boolean added = super.putIfAbsent(key, data);
            if (key.startsWith(ObjectKeys.CHUNKS)) {
                othersDone.countDown();
            }
            return added;
        }
    }

    @Test
    void aSlowChunkUploadDoesNotStopTheOthers() {
        List<Integer> chunks = new java.util.ArrayList<>();
        for (int c = 0; c < 40; c++) {
            chunks.add(c);
        }
        Manifest full = point(Optional.empty(), chunks);
        // window 2: 2 uploads run, 4 may wait; the 39 other chunks must all get through while one hangs
        OneSlowPut slow = new OneSlowPut(new InMemoryObjectTarget("slow"), 39);
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("slow", slow), 2)) {
            r.replicate("vm1", full.id(), "slow");
        }
        assertThat(slow.othersWentPastTheSlowOne).isTrue();
        assertThat(slow.delegate.keys().stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)))
                .hasSize(40);
    }

    @Test
    void afterAFailedChunkNoFurtherChunkIsReadOrSent() {
        List<Integer> chunks = new java.util.ArrayList<>();
        for (int c = 0; c < 200; c++) {
            chunks.add(c);
        }
        Manifest full = point(Optional.empty(), chunks);
        java.util.concurrent.atomic.AtomicInteger puts = new java.util.concurrent.atomic.AtomicInteger();
        CountingHeads failing = new CountingHeads(new InMemoryObjectTarget("failing")) {
            @Override
            public boolean putIfAbsent(String key, byte[] data) {
                if (key.startsWith(ObjectKeys.CHUNKS) && puts.incrementAndGet() == 10) {
                    throw new PermanentException("injected: 403 on " + key);
                }
                return super.putIfAbsent(key, data);
            }
        };
        // one upload thread: with more, a thread descheduled between the failing PUT and recording its
        // failure lets the others go on for as long as it sleeps, so no bound on their PUTs would hold
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("failing", failing), 1)) {
            assertThatThrownBy(() -> r.replicate("vm1", full.id(), "failing"))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("injected: 403");
        }
        // the copies queued behind the failed one (2 × 1) saw the failure and sent nothing
        assertThat(puts.get()).isEqualTo(10);
        assertThat(failing.delegate.keys()).noneMatch(k -> k.startsWith(ObjectKeys.MANIFESTS));
    }

    @Test
    void pagesAndRootsAreSentWithoutAskingFirstAndADamagedPageIsNeverShipped() {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2, 20, 40));
        CountingHeads counting = new CountingHeads(new InMemoryObjectTarget("counting"));
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("counting", counting), 4)) {
            r.replicate("vm1", full.id(), "counting");
        }
        // a first copy: no HEAD for its pages and root, the conditional PUT answers "there" if they are
        assertThat(counting.indexHeads.get()).isZero();
        assertThat(counting.delegate.keys()).anyMatch(k -> k.startsWith(ObjectKeys.ROOTS));

        // a damaged page in the primary is still never shipped (the replicator reads every page it
        // copies, to find its chunks, and that read verifies it)
        String page = primaryTarget.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.PAGES))
                .findFirst()
                .orElseThrow();
        byte[] bad = primaryTarget.get(page).orElseThrow();
        bad[bad.length - 1] ^= 1;
        primaryTarget.delete(page);
        primaryTarget.putIfAbsent(page, bad);
        InMemoryObjectTarget empty = new InMemoryObjectTarget("empty");
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("empty", empty), 4)) {
            assertThatThrownBy(() -> r.replicate("vm1", full.id(), "empty"))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining(page);
        }
        assertThat(empty.exists(page)).isFalse();
        assertThat(empty.keys()).noneMatch(k -> k.startsWith(ObjectKeys.MANIFESTS));
    }

    /**
     * {@code offsite}, recording every request in order; its read of the config waits (up to 10 s)
     * until the manifest has been asked for, to tell a replication that asks both at once from one
     * that asks one after the other.
     */
    private static final class ConfigWaitsForTheManifestCheck extends CountingHeads {
        final java.util.List<String> requests = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        final java.util.concurrent.CountDownLatch manifestAsked = new java.util.concurrent.CountDownLatch(1);
        volatile boolean configWaitedInVain;

        ConfigWaitsForTheManifestCheck(InMemoryObjectTarget delegate) {
            super(delegate);
        }

        @Override
        public Optional<byte[]> get(String key) {
            requests.add("GET " + key);
            if (key.equals(ObjectKeys.CONFIG)) {
                try {
                    configWaitedInVain |= !manifestAsked.await(10, java.util.concurrent.TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted", e);
                }
            }
            return super.get(key);
        }

        @Override
        public boolean exists(String key) {
            requests.add("HEAD " + key);
            if (key.startsWith(ObjectKeys.MANIFESTS)) {
                manifestAsked.countDown();
            }
            return super.exists(key);
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            requests.add("PUT " + key);
            return super.putIfAbsent(key, data);
        }
    }

    @Test
    void theConfigIsReadOnceAndThePointIsAskedForAtTheSameTime() {
        Manifest full = point(Optional.empty(), List.of(0, 1));
        Manifest next = point(Optional.of(full), List.of(1));
        ConfigWaitsForTheManifestCheck target = new ConfigWaitsForTheManifestCheck(new InMemoryObjectTarget("t"));
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("t", target), 4)) {
            r.replicate("vm1", full.id(), "t"); // seeds the config
            target.requests.clear();
            assertThat(r.replicate("vm1", next.id(), "t").alreadyThere()).isFalse();
            assertThat(r.replicate("vm1", next.id(), "t").alreadyThere()).isTrue();
        }
        // the manifest check did not wait for the config read (the old code asked one after the other)
        assertThat(target.configWaitedInVain).isFalse();
        // a target with its config: one GET of it per replication, no HEAD before (the old code sent both)
        assertThat(target.requests.stream().filter(q -> q.endsWith(" " + ObjectKeys.CONFIG)))
                .containsExactly("GET " + ObjectKeys.CONFIG, "GET " + ObjectKeys.CONFIG);
        // and nothing is written before the config was read and found to match (invariant 8)
        assertThat(target.requests.stream().filter(q -> q.startsWith("PUT")).findFirst())
                .hasValueSatisfying(q -> assertThat(target.requests.indexOf(q))
                        .isGreaterThan(target.requests.indexOf("GET " + ObjectKeys.CONFIG)));
    }

    @Test
    void aTargetOfAnotherRepositoryGetsNothingWrittenAlthoughThePointIsAskedForFirst() {
        Manifest full = point(Optional.empty(), List.of(0));
        ConfigWaitsForTheManifestCheck other = new ConfigWaitsForTheManifestCheck(new InMemoryObjectTarget("other"));
        Repository.openOrInit(
                other.delegate, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 32));
        java.util.Set<String> before = java.util.Set.copyOf(other.delegate.keys());
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("other", other), 4)) {
            assertThatThrownBy(() -> r.replicate("vm1", full.id(), "other"))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("use an empty location");
        }
        assertThat(other.delegate.keys()).containsExactlyInAnyOrderElementsOf(before);
        assertThat(other.requests).noneMatch(q -> q.startsWith("PUT"));
    }

    @Test
    void aPointCommittedByAnotherShippingWhileItWasAskedForIsNotShippedAgain() throws Exception {
        Manifest full = point(Optional.empty(), List.of(0, 1, 2));
        // the first shipping holds its lease write until the second has asked for the manifest
        // (and been told "not there"); the second then waits for the lock, and must ask again
        java.util.concurrent.CountDownLatch secondAsked = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch firstInLease = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicInteger manifestHeads = new java.util.concurrent.atomic.AtomicInteger();
        CountingHeads target = new CountingHeads(new InMemoryObjectTarget("t")) {
            @Override
            public boolean putIfAbsent(String key, byte[] data) {
                if (key.startsWith(ObjectKeys.STATE) && secondAsked.getCount() > 0) {
                    firstInLease.countDown();
                    try {
                        secondAsked.await(10, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new RetriableException("interrupted", e);
                    }
                }
                return super.putIfAbsent(key, data);
            }

            @Override
            public boolean exists(String key) {
                boolean there = super.exists(key);
                if (key.startsWith(ObjectKeys.MANIFESTS) && manifestHeads.incrementAndGet() == 2) {
                    secondAsked.countDown();
                }
                return there;
            }
        };
        try (Replicator r = new Replicator(primary, Map.<String, ObjectTarget>of("t", target), 4)) {
            var first = java.util.concurrent.CompletableFuture.supplyAsync(() -> r.replicate("vm1", full.id(), "t"));
            assertThat(firstInLease.await(10, java.util.concurrent.TimeUnit.SECONDS))
                    .isTrue();
            Replicator.Result second = r.replicate("vm1", full.id(), "t");
            Replicator.Result firstResult = first.get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(firstResult.alreadyThere()).isFalse();
            assertThat(second.alreadyThere()).isTrue();
            assertThat(second.objectsSent()).isZero();
        }
        assertThat(target.chunksSentTwice.get()).isZero();
    }
}
