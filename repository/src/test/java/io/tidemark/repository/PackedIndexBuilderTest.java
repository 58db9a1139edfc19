package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The index builder's packs (ADR 26): the patches waiting for their packs stay within a few packs'
 * bytes however many pages a backup patches, and every patched entry reads back its patch; a patch
 * larger than that bound is still stored; a chunk set again wins over its waiting patch, and the
 * index refuses patches once finished; readers read a pack once and do not remember a failed read.
 */
class PackedIndexBuilderTest {

    static final int CHUNK = 64 * 1024;
    static final int PER_PAGE = 16;
    static final int PAGES = 24;

    @Test
    void patchesWaitingForTheirPacksStayWithinTheBoundWhateverTheNumberOfPages() {
        Repository repo = Repository.openOrInit(
                new InMemoryObjectTarget("packs"),
                new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, PER_PAGE));
        long size = (long) PAGES * PER_PAGE * CHUNK;
        byte[] chunk = new byte[CHUNK];
        Random random = new Random(26);
        DiskIndexBuilder full = repo.newIndex(size, Optional.empty());
        for (int c = 0; c < PAGES * PER_PAGE; c++) {
            random.nextBytes(chunk);
            full.set(c, repo.putChunk(chunk, CHUNK).digest());
        }
        IndexRoot parent = repo.root(full.finish());

        // every chunk patched with 16 KiB: 6 MiB of patches over 24 pages, in disk order
        DiskIndexBuilder inc = repo.newIndex(size, Optional.of(parent));
        long most = 0;
        Map<Long, byte[]> written = new java.util.HashMap<>();
        for (long c = 0; c < PAGES * PER_PAGE; c++) {
            byte[] data = new byte[16 * 1024];
            random.nextBytes(data);
            written.put(c, data);
            inc.setPatched(c, ChunkPatch.of(inc.parentEntry(c).chunk(), CHUNK, Map.of(4096, data)));
            most = Math.max(most, inc.pendingBytes());
        }
        assertThat(most).isLessThanOrEqualTo(DiskIndexBuilder.PENDING_MAX_BYTES);
        IndexRoot root = repo.root(inc.finish());

        Set<Digest> packs = new HashSet<>();
        for (int p = 0; p < PAGES; p++) {
            IndexPage page = repo.page(root.pages().get(p));
            for (int i = 0; i < PER_PAGE; i++) {
                assertThat(page.packed(i)).isTrue();
                packs.add(page.patch(i));
                byte[] plain = repo.chunk(page, i, CHUNK);
                byte[] expected = written.get((long) p * PER_PAGE + i);
                assertThat(java.util.Arrays.copyOfRange(plain, 4096, 4096 + expected.length))
                        .isEqualTo(expected);
            }
        }
        assertThat(packs).as("one pack per page, none over the limit").hasSize(PAGES);
        assertThat(inc.packsWritten()).isEqualTo(PAGES);
    }

    @Test
    void aPatchLargerThanTheWaitingBoundIsStillStoredAndReadBack() {
        // chunks of 16 MiB allow patches of 4 MiB, more than the 2 MiB that may wait across pages
        int chunk = 16 << 20;
        Repository repo = Repository.openOrInit(
                new InMemoryObjectTarget("big"),
                new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, chunk, 4));
        byte[] data = new byte[chunk];
        new Random(3).nextBytes(data);
        DiskIndexBuilder full = repo.newIndex(chunk, Optional.empty());
        full.set(0, repo.putChunk(data, chunk).digest());
        IndexRoot parent = repo.root(full.finish());

        byte[] change = new byte[3 << 20];
        new Random(4).nextBytes(change);
        DiskIndexBuilder inc = repo.newIndex(chunk, Optional.of(parent));
        inc.setPatched(0, ChunkPatch.of(inc.parentEntry(0).chunk(), chunk, Map.of(4096, change)));
        IndexPage page = repo.page(repo.root(inc.finish()).pages().get(0));

        byte[] expected = data.clone();
        System.arraycopy(change, 0, expected, 4096, change.length);
        assertThat(page.packed(0)).isTrue();
        assertThat(repo.chunk(page, 0, chunk)).isEqualTo(expected);
    }

    @Test
    void aChunkSetAgainAfterItsPatchWaitsReadsAsTheLastSetAndNothingChangesAfterFinish() {
        Repository repo = Repository.openOrInit(
                new InMemoryObjectTarget("again"),
                new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, PER_PAGE));
        long size = (long) PER_PAGE * CHUNK;
        byte[] a = new byte[CHUNK];
        byte[] b = new byte[CHUNK];
        new Random(5).nextBytes(a);
        new Random(6).nextBytes(b);
        DiskIndexBuilder full = repo.newIndex(size, Optional.empty());
        full.set(0, repo.putChunk(a, CHUNK).digest());
        IndexRoot parent = repo.root(full.finish());

        DiskIndexBuilder inc = repo.newIndex(size, Optional.of(parent));
        inc.setPatched(0, ChunkPatch.of(inc.parentEntry(0).chunk(), CHUNK, Map.of(0, new byte[] {1, 2, 3})));
        Digest whole = repo.putChunk(b, CHUNK).digest();
        inc.set(0, whole); // the whole chunk after all: its waiting patch must not be packed over it
        assertThat(inc.pendingBytes()).isZero();
        IndexPage page = repo.page(repo.root(inc.finish()).pages().get(0));
        assertThat(page.patchRef(0).isNone()).isTrue();
        assertThat(repo.chunk(page, 0, CHUNK)).isEqualTo(b);

        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> inc.setPatched(1, ChunkPatch.of(Digest.ZERO, CHUNK, Map.of(0, new byte[] {1}))))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("finished");
    }

    @Test
    void aPackIsReadOnceForAllThreadsAndAFailedReadIsNotKept() throws Exception {
        CountingObjectTarget target = new CountingObjectTarget(new InMemoryObjectTarget("cache"));
        Repository repo = Repository.openOrInit(
                target, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, PER_PAGE));
        Map<Integer, ChunkPatch> slots = new java.util.TreeMap<>();
        for (int i = 0; i < PER_PAGE; i++) {
            slots.put(i, ChunkPatch.of(Digest.ZERO, CHUNK, Map.of(i * 16, new byte[] {(byte) i})));
        }
        io.tidemark.format.PatchPack pack = new io.tidemark.format.PatchPack(slots);
        Digest d = repo.putPack(pack).digest();
        String key = io.tidemark.format.ObjectKeys.chunk(d);
        byte[] stored = target.get(key).orElseThrow();
        target.reset();

        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(8);
        try {
            java.util.List<java.util.concurrent.Future<ChunkPatch>> reads = new java.util.ArrayList<>();
            for (int i = 0; i < PER_PAGE; i++) {
                int entry = i;
                reads.add(pool.submit(() -> repo.patch(new io.tidemark.format.PatchRef(d, entry))));
            }
            for (int i = 0; i < PER_PAGE; i++) {
                assertThat(reads.get(i).get().ranges().get(0).offset()).isEqualTo(i * 16);
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(target.gets(io.tidemark.format.ObjectKeys.CHUNKS))
                .as("one read")
                .isEqualTo(1);

        // a pack that cannot be read now is read again later, not remembered as failed
        Digest other = Digest.sha256(new byte[] {42});
        String otherKey = io.tidemark.format.ObjectKeys.chunk(other);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> repo.patch(new io.tidemark.format.PatchRef(other, 0)))
                .hasMessageContaining(otherKey);
        target.putIfAbsent(otherKey, stored); // another pack's bytes under this name: corrupt, and said so
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> repo.patch(new io.tidemark.format.PatchRef(other, 0)))
                .isInstanceOf(io.tidemark.core.CorruptObjectException.class);
    }
}
