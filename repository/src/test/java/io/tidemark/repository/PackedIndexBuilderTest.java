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
 * bytes however many pages a backup patches, and every patched entry reads back its patch.
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
}
