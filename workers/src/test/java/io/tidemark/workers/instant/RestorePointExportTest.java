package io.tidemark.workers.instant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.workers.nbd.Extent;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RestorePointExportTest {

    private static final int CHUNK = 64 * 1024;
    private static final int SIZE = 40 * CHUNK + 4096; // a short last chunk

    private final InMemoryObjectTarget target = new InMemoryObjectTarget("mem");
    private final Repository repo =
            Repository.openOrInit(target, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, 16));
    private final byte[] image = TestPoints.image(SIZE, CHUNK, 5, 42);
    private final Manifest point = TestPoints.commit(repo, "vm1", "sda", image);
    private final List<RestorePointExport> opened = new ArrayList<>();

    @AfterEach
    void close() {
        opened.forEach(RestorePointExport::close);
    }

    private RestorePointExport open(RestorePointExport.Options o) {
        RestorePointExport e = RestorePointExport.open(repo, point, "sda", o);
        opened.add(e);
        return e;
    }

    @Test
    void readsAnyRangeAsThePointHoldsIt() {
        RestorePointExport e = open(RestorePointExport.Options.defaults());
        assertThat(e.size()).isEqualTo(SIZE);
        assertThat(e.name()).isEqualTo("vm1-sda");
        Random r = new Random(1);
        for (int i = 0; i < 200; i++) {
            int off = r.nextInt(SIZE);
            int len = r.nextInt(Math.min(SIZE - off, 3 * CHUNK) + 1);
            byte[] buf = new byte[len + 10];
            Arrays.fill(buf, (byte) 0x77); // stale bytes must be overwritten, also in holes
            e.read(off, buf, 5, len);
            assertThat(Arrays.copyOfRange(buf, 5, 5 + len)).isEqualTo(Arrays.copyOfRange(image, off, off + len));
        }
        byte[] all = new byte[SIZE];
        e.read(0, all, 0, SIZE);
        assertThat(all).isEqualTo(image);
    }

    @Test
    void zeroChunksAreHolesAndNeverFetched() {
        RestorePointExport e = open(new RestorePointExport.Options(64L << 20, 0, 2));
        byte[] buf = new byte[CHUNK];
        e.read(0, buf, 0, CHUNK); // chunk 0 is zero (every 5th)
        assertThat(e.chunksFetched()).isZero();
        List<Extent> map = e.allocation(0, SIZE);
        assertThat(map.get(0)).isEqualTo(new Extent(0, CHUNK, Extent.HOLE | Extent.ZERO));
        assertThat(map.get(1)).isEqualTo(new Extent(CHUNK, 4L * CHUNK, 0));
        assertThat(map.get(2)).isEqualTo(new Extent(5L * CHUNK, CHUNK, Extent.HOLE | Extent.ZERO));
        assertThat(map.stream().mapToLong(Extent::length).sum()).isEqualTo(SIZE);
        assertThat(e.allocation(CHUNK + 100, 10)).containsExactly(new Extent(CHUNK + 100, 10, 0));
    }

    @Test
    void cachesChunksBoundedAndPrefetchesNeighbours() {
        RestorePointExport e = open(new RestorePointExport.Options(4L * CHUNK, 3, 2));
        byte[] buf = new byte[100];
        e.read(CHUNK + 10, buf, 0, 100); // chunk 1, prefetches 2, 3, 4
        long fetched = awaitFetched(e, 4);
        assertThat(fetched).isEqualTo(4);
        e.read(2L * CHUNK, buf, 0, 100); // prefetched: a hit
        assertThat(e.cacheHits()).isEqualTo(1);
        // read the whole disk twice with a 6-chunk cache: the second pass must fetch again
        byte[] all = new byte[SIZE];
        e.read(0, all, 0, SIZE);
        long afterFirst = e.chunksFetched();
        e.read(0, all, 0, SIZE);
        assertThat(e.chunksFetched()).isGreaterThan(afterFirst);
        assertThat(all).isEqualTo(image);
    }

    @Test
    void concurrentReadersShareOneFetchPerChunk() {
        RestorePointExport e = open(new RestorePointExport.Options(64L << 20, 0, 4));
        List<CompletableFuture<byte[]>> readers = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            readers.add(CompletableFuture.supplyAsync(() -> {
                byte[] all = new byte[SIZE];
                e.read(0, all, 0, SIZE);
                return all;
            }));
        }
        readers.forEach(f -> assertThat(f.join()).isEqualTo(image));
        long nonZero = Arrays.stream(digests()).filter(d -> !d.isZero()).count();
        assertThat(e.chunksFetched()).isEqualTo(nonZero);
    }

    @Test
    void aCorruptChunkFailsTheReadNamingItsKeyAndIsNotCached() {
        Digest bad = digests()[3];
        String key = ObjectKeys.chunk(bad);
        byte[] good = target.get(key).orElseThrow();
        byte[] corrupt = good.clone();
        corrupt[corrupt.length - 1] ^= 1;
        target.delete(key);
        target.putIfAbsent(key, corrupt);

        // no read-ahead: a background fetch of the bad chunk must not race with the repair below
        RestorePointExport e = open(new RestorePointExport.Options(64L << 20, 0, 2));
        byte[] buf = new byte[CHUNK];
        assertThatThrownBy(() -> e.read(3L * CHUNK + 1, buf, 0, 10))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(key)
                .hasMessageContaining("chunk 3")
                .hasMessageContaining(point.id());
        e.read(2L * CHUNK, buf, 0, CHUNK); // its neighbour is fine
        assertThat(buf).isEqualTo(Arrays.copyOfRange(image, 2 * CHUNK, 3 * CHUNK));

        target.delete(key);
        target.putIfAbsent(key, good); // repaired: the next read fetches again
        e.read(3L * CHUNK, buf, 0, CHUNK);
        assertThat(buf).isEqualTo(Arrays.copyOfRange(image, 3 * CHUNK, 4 * CHUNK));
    }

    @Test
    void anUnknownDiskIsNamed() {
        assertThatThrownBy(() -> RestorePointExport.open(repo, point, "vdz", RestorePointExport.Options.defaults()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no disk 'vdz'")
                .hasMessageContaining("[sda]");
    }

    @ParameterizedTest(name = "in a pack: {0}")
    @ValueSource(booleans = {false, true})
    void patchedChunksReadAsBaseAndPatchAndAPatchedZeroChunkIsNoHole(boolean packed) {
        // ADR 15: chunk 3 (data) and chunk 5 (zero in the parent) get 4 KiB patches, as patch objects
        // or in a pack (ADR 26)
        byte[] expected = image.clone();
        DiskIndexBuilder index = repo.newIndex(
                SIZE, Optional.of(repo.root(Digest.fromHex(point.disks().get(0).index()))));
        Random r = new Random(9);
        for (int c : List.of(3, 5)) {
            byte[] data = new byte[4096];
            r.nextBytes(data);
            System.arraycopy(data, 0, expected, c * CHUNK + 8192, 4096);
            DiskIndexBuilder.Entry was = index.parentEntry(c);
            ChunkPatch patch = ChunkPatch.of(was.chunk(), CHUNK, Map.of(8192, data));
            if (packed) {
                index.setPatched(c, patch);
            } else {
                index.setPatched(c, was.chunk(), repo.putPatch(patch).digest());
            }
        }
        Digest root = index.finish();
        Manifest child = new Manifest(
                1,
                "20991231T000000.000Z-cccccc",
                "vm1",
                "hv1",
                "job-child",
                point.capturedAt().plusSeconds(60),
                point.committedAt().plusSeconds(60),
                point.consistency(),
                point.trigger(),
                "pol",
                Optional.of(point.id()),
                List.of(new DiskEntry("sda", SIZE, CHUNK, root.hex(), "tm-2", Optional.empty(), 0, 0)));
        repo.commit(child);
        RestorePointExport e = RestorePointExport.open(repo, child, "sda", RestorePointExport.Options.defaults());
        opened.add(e);

        byte[] all = new byte[SIZE];
        e.read(0, all, 0, SIZE);
        assertThat(all).isEqualTo(expected);
        assertThat(e.allocation(5L * CHUNK, CHUNK)).singleElement().satisfies(x -> assertThat(x.zero())
                .isFalse());
        assertThat(e.allocation(10L * CHUNK, CHUNK)).singleElement().satisfies(x -> assertThat(x.zero())
                .isTrue());
    }

    private Digest[] digests() {
        IndexRoot root = repo.root(Digest.fromHex(point.disks().get(0).index()));
        List<Digest> all = new ArrayList<>();
        for (Digest p : root.pages()) {
            IndexPage page = repo.page(p);
            for (int i = 0; i < page.size(); i++) {
                all.add(page.get(i));
            }
        }
        return all.toArray(Digest[]::new);
    }

    /** Prefetches run in the background: wait (bounded) until {@code n} chunks were fetched. */
    private static long awaitFetched(RestorePointExport e, long n) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (e.chunksFetched() < n && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        return e.chunksFetched();
    }
}
