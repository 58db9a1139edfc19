package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.Digest;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * An incremental's index costs O(changed data): only the pages holding a changed chunk and the root
 * are new objects; a zero-change incremental writes no index object at all. Zero chunks are never
 * stored, identical chunks once, whichever disk (or VM) they come from.
 */
class IncrementalIndexCostTest {

    private static final long GIB = 1L << 30;

    private final InMemoryObjectTarget target = new InMemoryObjectTarget("t");
    private final Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
    private final int chunk = repo.config().chunkSize();
    private final Random random = new Random(3);

    private byte[] randomChunk() {
        byte[] b = new byte[chunk];
        random.nextBytes(b);
        return b;
    }

    private Set<String> newKeys(Set<String> before) {
        Set<String> now = new HashSet<>(target.keys());
        now.removeAll(before);
        return now;
    }

    @Test
    void anIncrementalOfA64GibDiskWritesOnlyTheChangedPagesAndTheRoot() {
        long size = 64 * GIB; // 262,144 chunks, 256 index pages
        DiskIndexBuilder full = repo.newIndex(size, Optional.empty());
        for (long c = 0; c < 262_144; c += 4096) {
            full.set(c, repo.putChunk(randomChunk(), chunk).digest());
        }
        IndexRoot parent = repo.root(full.finish());
        assertThat(parent.pages()).hasSize(256);

        // three changed chunks, two of them in the same page
        Set<String> before = new HashSet<>(target.keys());
        DiskIndexBuilder inc = repo.newIndex(size, Optional.of(parent));
        assertThat(inc.hasParent()).isTrue();
        inc.set(5, repo.putChunk(randomChunk(), chunk).digest());
        inc.set(6, repo.putChunk(randomChunk(), chunk).digest());
        inc.set(200_000, repo.putChunk(randomChunk(), chunk).digest());
        Digest root = inc.finish();
        Set<String> added = newKeys(before);
        assertThat(added.stream().filter(k -> k.startsWith("chunks/"))).hasSize(3);
        assertThat(added.stream().filter(k -> k.startsWith("pages/"))).hasSize(2);
        assertThat(added.stream().filter(k -> k.startsWith("roots/"))).hasSize(1);
        assertThat(added).hasSize(6);
        IndexRoot r = repo.root(root);
        assertThat(r.pages().subList(1, 195)).isEqualTo(parent.pages().subList(1, 195)); // untouched pages shared

        // no change at all: the same root, nothing new
        before = new HashSet<>(target.keys());
        DiskIndexBuilder none = repo.newIndex(size, Optional.of(r));
        assertThat(none.finish()).isEqualTo(root);
        assertThat(newKeys(before)).isEmpty();
    }

    @Test
    void zeroChunksAreNeverStoredAndIdenticalChunksOfTwoDisksAreStoredOnce() {
        assertThat(repo.putChunk(new byte[chunk], chunk).digest()).isEqualTo(Digest.ZERO);
        assertThat(target.keys()).noneMatch(k -> k.startsWith("chunks/"));

        List<byte[]> base = List.of(randomChunk(), randomChunk(), randomChunk(), randomChunk());
        long stored = 0;
        for (int vm = 0; vm < 10; vm++) { // ten clones of one base, each with one chunk of its own
            for (byte[] b : base) {
                stored += repo.putChunk(b, chunk).storedBytes();
            }
            stored += repo.putChunk(randomChunk(), chunk).storedBytes();
        }
        assertThat(target.keys().stream().filter(k -> k.startsWith("chunks/"))).hasSize(4 + 10);
        // random data does not compress: about one base plus the ten differences
        assertThat(stored).isBetween(14L * chunk, 14L * chunk + 14 * 64);
    }
}
