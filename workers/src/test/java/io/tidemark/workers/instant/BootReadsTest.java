package io.tidemark.workers.instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.BootReadLog;
import io.tidemark.repository.BootReadTrace;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.ForwardingObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The boot-read trace and its prefetch, on an in-memory repository whose chunk reads are counted. */
class BootReadsTest {

    private static final int CHUNK = 64 * 1024;
    private static final int SIZE = 40 * CHUNK;
    private static final Instant T0 = Instant.parse("2026-12-07T08:00:00Z");

    private final CountingTarget target = new CountingTarget(new InMemoryObjectTarget("mem"));
    private final Repository repo =
            Repository.openOrInit(target, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 16));
    private final byte[] image = TestPoints.image(SIZE, CHUNK, 5, 42); // chunks 0, 5, 10, … are zero
    private final Manifest point = TestPoints.commit(repo, "vm1", "sda", image);
    private final BootReadLog log = new BootReadLog(target);
    private final FakeClock clock = new FakeClock(T0);
    private final List<AutoCloseable> opened = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : opened) {
            c.close();
        }
    }

    /** An export without read-ahead, and its boot reads with a window no test reaches. */
    private RestorePointExport export() {
        RestorePointExport e =
                RestorePointExport.open(repo, point, "sda", new RestorePointExport.Options(64L << 20, 0, 8));
        opened.add(e);
        return e;
    }

    private BootReads bootReads(RestorePointExport e, BootReads.Mode mode) {
        BootReads b =
                BootReads.start(log, point, "sda", e, new BootReads.Options(mode, Duration.ofHours(1), 1024, 2), clock);
        opened.add(0, b);
        return b;
    }

    private void trace(List<Long> chunks) {
        log.record(new BootReadTrace(BootReadTrace.VERSION, "vm1", "sda", "older-point", T0, CHUNK, chunks));
    }

    @Test
    void aReadOfAChunkBeingPrefetchedWaitsForThatFetchAndTheChunkIsFetchedOnce() throws Exception {
        trace(List.of(1L, 2L, 3L, 6L, 7L));
        target.gate = new CountDownLatch(1);
        RestorePointExport e = export();
        bootReads(e, BootReads.Mode.PREFETCH);
        String key1 = ObjectKeys.chunk(digest(1));
        await(() -> target.gets(key1) == 1); // the prefetch's GET of chunk 1 is under way (held at the gate)

        CompletableFuture<byte[]> reader = CompletableFuture.supplyAsync(() -> {
            byte[] buf = new byte[CHUNK];
            e.read(CHUNK, buf, 0, CHUNK);
            return buf;
        });
        target.gate.countDown();
        assertThat(reader.get(10, TimeUnit.SECONDS)).isEqualTo(Arrays.copyOfRange(image, CHUNK, 2 * CHUNK));
        assertThat(e.awaitPrefetch(Duration.ofSeconds(10))).isTrue();
        byte[] buf = new byte[3 * CHUNK];
        e.read(5L * CHUNK, buf, 0, buf.length); // chunks 5 (zero), 6, 7: prefetched
        assertThat(buf).isEqualTo(Arrays.copyOfRange(image, 5 * CHUNK, 8 * CHUNK));

        for (long c : List.of(1L, 2L, 3L, 6L, 7L)) {
            assertThat(target.gets(ObjectKeys.chunk(digest(c))))
                    .as("GETs of chunk %d", c)
                    .isEqualTo(1);
        }
        assertThat(e.tracePrefetched()).isEqualTo(5);
        assertThat(e.demandFetches()).isZero();
        assertThat(e.tracePrefetchHits()).isEqualTo(3); // 1, 6, 7 were read; 2 and 3 not (yet)
    }

    @Test
    void theGuestsReadsAreRecordedFirstReadFirstOnceWithoutReadAheadAndStoredAtTheEnd() {
        RestorePointExport e =
                RestorePointExport.open(repo, point, "sda", new RestorePointExport.Options(64L << 20, 3, 4));
        opened.add(e);
        BootReads b = bootReads(e, BootReads.Mode.PREFETCH);
        byte[] buf = new byte[100];
        for (long c : List.of(7L, 2L, 7L, 0L, 3L, 2L)) { // 0 is a zero chunk: nothing to fetch
            e.read(c * CHUNK + 10, buf, 0, buf.length);
        }
        clock.advance(Duration.ofSeconds(30));
        b.finish();

        BootReadTrace t = log.latest("vm1", "sda").orElseThrow();
        assertThat(t.chunks()).containsExactly(7L, 2L, 3L);
        assertThat(t.version()).isEqualTo(BootReadTrace.VERSION);
        assertThat(t.restorePoint()).isEqualTo(point.id());
        assertThat(t.chunkSize()).isEqualTo(CHUNK);
        assertThat(t.at()).isEqualTo(T0.plusSeconds(30));
        assertThat(b.recordedChunks()).isEqualTo(3);
        e.read(20L * CHUNK, buf, 0, buf.length); // after the end: not recorded, nothing stored again
        b.close();
        assertThat(log.latest("vm1", "sda").orElseThrow().chunks()).containsExactly(7L, 2L, 3L);
    }

    @Test
    void aCorruptTraceMeansNoPrefetchAndTheRestoreGoesOnAndRecordsANewOne() {
        target.putIfAbsent(
                ObjectKeys.bootReads("vm1", "sda", "0000000000001-x"),
                "{\"version\":1,\"chu".getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> log.latest("vm1", "sda"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("state/boot-reads/vm1/sda/0000000000001-x.json")
                .hasMessageContaining("delete it");
        RestorePointExport e = export();
        BootReads b = bootReads(e, BootReads.Mode.PREFETCH);
        byte[] all = new byte[SIZE];
        e.read(0, all, 0, SIZE);
        assertThat(all).isEqualTo(image);
        b.close(); // waits for the trace's reading
        assertThat(b.loaded()).isEmpty();
        assertThat(e.tracePrefetched()).isZero();
        assertThat(log.latest("vm1", "sda").orElseThrow().chunks()).hasSize(32); // 40 chunks, 8 of them zero
    }

    @Test
    void aTraceOfAnotherChunkSizeOrAnotherVersionIsNotPrefetched() {
        log.record(new BootReadTrace(BootReadTrace.VERSION, "vm1", "sda", "p", T0, CHUNK * 2, List.of(1L, 2L)));
        RestorePointExport e = export();
        BootReads b = bootReads(e, BootReads.Mode.PREFETCH);
        b.close();
        assertThat(b.loaded()).isEmpty();
        assertThat(e.tracePrefetched()).isZero();

        log.record(new BootReadTrace(2, "vm1", "sda", "q", T0.plusSeconds(1), CHUNK, List.of(1L, 2L)));
        assertThatThrownBy(() -> log.latest("vm1", "sda")).hasMessageContaining("version is 2");
    }

    @Test
    void aCorruptChunkInThePrefetchIsCountedNotCachedAndAReadOfItFailsNamingIt() throws Exception {
        Digest bad = digest(3);
        String key = ObjectKeys.chunk(bad);
        byte[] good = target.get(key).orElseThrow();
        byte[] corrupt = good.clone();
        corrupt[corrupt.length - 1] ^= 1;
        target.delete(key);
        target.putIfAbsent(key, corrupt);
        trace(List.of(2L, 3L, 4L, 99L)); // 99 is beyond the disk: skipped

        RestorePointExport e = export();
        bootReads(e, BootReads.Mode.PREFETCH);
        await(() -> e.tracePrefetched() + e.tracePrefetchFailed() == 3);
        assertThat(e.awaitPrefetch(Duration.ofSeconds(10))).isTrue();
        assertThat(e.tracePrefetched()).isEqualTo(2);
        assertThat(e.tracePrefetchFailed()).isEqualTo(1);

        int prefetchGets = target.gets(key);
        byte[] buf = new byte[CHUNK];
        assertThatThrownBy(() -> e.read(3L * CHUNK, buf, 0, CHUNK))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(key);
        // the read fetched it again: a failed prefetch is not cached
        assertThat(target.gets(key)).isGreaterThan(prefetchGets);
        e.read(4L * CHUNK, buf, 0, CHUNK);
        assertThat(buf).isEqualTo(Arrays.copyOfRange(image, 4 * CHUNK, 5 * CHUNK));
        assertThat(e.demandFetches()).isEqualTo(0); // 3 failed, 4 came from the prefetch
    }

    @Test
    void offNeitherPrefetchesNorWritesTheRepository() {
        trace(List.of(1L, 2L));
        Map<String, Integer> before = target.keys();
        RestorePointExport e = export();
        BootReads b = bootReads(e, BootReads.Mode.OFF);
        byte[] all = new byte[SIZE];
        e.read(0, all, 0, SIZE);
        b.close();
        assertThat(e.tracePrefetched()).isZero();
        assertThat(target.keys()).isEqualTo(before);
        assertThat(log.latest("vm1", "sda").orElseThrow().restorePoint()).isEqualTo("older-point");
    }

    @Test
    void aTraceThatCannotBeStoredIsDroppedNotAFailure() {
        RestorePointExport e = export();
        BootReads b = bootReads(e, BootReads.Mode.RECORD);
        byte[] buf = new byte[10];
        e.read(CHUNK, buf, 0, buf.length);
        target.refusePuts = true;
        b.close();
        assertThat(b.recordedChunks()).isEqualTo(1);
        target.refusePuts = false;
        assertThat(log.latest("vm1", "sda")).isEmpty();
    }

    private Digest digest(long c) {
        IndexRoot root = repo.root(Digest.fromHex(point.disks().get(0).index()));
        int perPage = root.entriesPerPage();
        IndexPage page = repo.page(root.pages().get((int) (c / perPage)));
        return page.get((int) (c % perPage));
    }

    private static void await(java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 10 s");
            }
            Thread.onSpinWait();
        }
    }

    /** Counts GETs per key; can hold chunk GETs at a gate and refuse puts under state/. */
    private static final class CountingTarget extends ForwardingObjectTarget {
        private final Map<String, AtomicInteger> gets = new ConcurrentHashMap<>();
        volatile CountDownLatch gate;
        volatile boolean refusePuts;

        CountingTarget(ObjectTarget inner) {
            super(inner);
        }

        int gets(String key) {
            AtomicInteger n = gets.get(key);
            return n == null ? 0 : n.get();
        }

        Map<String, Integer> keys() {
            Map<String, Integer> out = new java.util.TreeMap<>();
            for (String k : delegate().list("")) {
                out.put(k, Arrays.hashCode(delegate().get(k).orElseThrow()));
            }
            return out;
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            if (refusePuts && key.startsWith(ObjectKeys.STATE)) {
                throw new io.tidemark.core.RetriableException("the target is read-only here");
            }
            return delegate().putIfAbsent(key, data);
        }

        @Override
        public Optional<byte[]> get(String key) {
            if (key.startsWith(ObjectKeys.CHUNKS)) {
                gets.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
                CountDownLatch g = gate;
                if (g != null) {
                    try {
                        g.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
            return delegate().get(key);
        }
    }
}
