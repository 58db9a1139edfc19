package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PatchRef;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.PointFootprint;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packs of patches (ADR 26): an incremental stores the patches of a page as a few packs instead of
 * one object per patched chunk; points restore byte for byte across packs, standalone patches of
 * older points and re-patched chunks; a pack mostly superseded is written again so no page's reader
 * reads more than twice the patch bytes it uses; GC keeps the packs kept points name and sweeps the
 * rest; verify finds a damaged pack and a slot on another base.
 */
class PatchPacksTest {

    static final int CHUNK = 64 * 1024;
    static final int PER_PAGE = 128;

    final FakeClock clock = new FakeClock(Instant.parse("2026-12-08T00:00:00Z"));
    InMemoryObjectTarget memory;
    Repository repo;
    Points points;

    @BeforeEach
    void setUp() {
        memory = new InMemoryObjectTarget("packs");
        repo = Repository.openOrInit(
                memory, new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, CHUNK, PER_PAGE));
        points = new Points(repo, "vm1", PER_PAGE, 26);
    }

    @Test
    void anIncrementalStoresItsPatchesAsAFewPacksPerPageAndRestoresByteForByte(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(PER_PAGE);
        Set<String> before = chunkKeys();
        // 100 chunks with a 16 KiB change each: 1.6 MiB of patches, more than one pack holds
        Map<Integer, Integer> changes =
                IntStream.range(0, 100).boxed().collect(Collectors.toMap(c -> c, c -> (c * 4096) % (CHUNK - 16384)));
        Points.Pending p1 = points.packed(full, changes, 16384);

        Set<String> added = chunkKeys();
        added.removeAll(before);
        assertThat(added).as("two packs, not 100 patches").hasSize(2);
        IndexPage page = repo.page(points.firstPage(p1));
        assertThat(page.toBytes()[4]).as("a page naming packs is version 3").isEqualTo((byte) 3);
        assertThat(IntStream.range(0, 100).mapToObj(page::patch).distinct().count())
                .isEqualTo(2);
        for (Digest pack :
                new HashSet<>(IntStream.range(0, 100).mapToObj(page::patch).toList())) {
            assertThat(repo.pack(pack).bytes()).isLessThanOrEqualTo(FormatConstants.PACK_MAX_BYTES);
        }
        points.assertRestores(full, tmp);
        points.assertRestores(p1, tmp);
        assertThat(PointFootprint.of(repo, p1.manifest()).missing()).isZero();
        assertThat(points.verify(true).problems()).isEmpty();
    }

    @Test
    void packsStandalonePatchesAndRepatchedChunksRestoreAcrossIncrementals(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(16);
        Points.Pending p1 = points.patched(full, Map.of(1, 4096, 2, 0, 3, 100), 4096); // before packs: objects
        Points.Pending p2 = points.packed(p1, Map.of(1, 20000, 5, 60000, 20, 8), 512); // 20: a zero base
        Points.Pending p3 = points.packed(p2, Map.of(1, 4096, 6, 0), 4096); // over p1's range: the newest wins
        for (Points.Pending p : List.of(full, p1, p2, p3)) {
            points.assertRestores(p, tmp);
        }
        IndexPage page = repo.page(points.firstPage(p3));
        assertThat(page.patchRef(2))
                .as("untouched since p1: still its patch object")
                .isEqualTo(PatchRef.patch(repo.page(points.firstPage(p1)).patch(2)));
        assertThat(page.packed(1)).isTrue();
        assertThat(repo.patchOf(page.get(1), page.patchRef(1), CHUNK).ranges())
                .as("one patch on the whole base, holding p1's, p2's and p3's ranges")
                .extracting(r -> r.offset())
                .containsExactly(4096, 20000);
        assertThat(points.verify(true).problems()).isEmpty();
    }

    @Test
    void aPackMostlySupersededIsWrittenAgainSoAReaderReadsAtMostTwiceWhatItUses(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(16);
        Points.Pending p1 = points.packed(full, changes(0, 10), 4096);
        Digest first = repo.page(points.firstPage(p1)).patch(0);

        // 4 of 10 re-patched: 60 % of the first pack still read by this page, it stays
        Points.Pending p2 = points.packed(p1, changes(0, 4), 4096);
        IndexPage page2 = repo.page(points.firstPage(p2));
        assertThat(page2.patch(9)).isEqualTo(first);
        assertThat(page2.patch(0)).isNotEqualTo(first);

        // 2 more: 40 % live, under half: its live slots move into the new pack
        Points.Pending p3 = points.packed(p2, changes(4, 6), 4096);
        IndexPage page3 = repo.page(points.firstPage(p3));
        for (int i = 0; i < 16; i++) {
            assertThat(page3.patch(i)).as("entry %d", i).isNotEqualTo(first);
        }
        assertThat(page3.patch(9)).isEqualTo(page3.patch(4));
        for (Points.Pending p : List.of(p1, p2, p3)) {
            points.assertRestores(p, tmp);
        }
        // every pack p3's page names is at least half live
        Map<Digest, Integer> live = new TreeMap<>();
        for (int i = 0; i < page3.size(); i++) {
            if (page3.packed(i)) {
                live.merge(page3.patch(i), page3.slotBytes(i), Integer::sum);
            }
        }
        live.forEach((pack, bytes) -> assertThat(2L * bytes).isGreaterThanOrEqualTo(page3.packBytes(pack)));
    }

    @Test
    void gcKeepsThePacksOfKeptPointsAndSweepsTheRest(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(16);
        Points.Pending p1 = points.packed(full, changes(0, 10), 4096);
        String first = ObjectKeys.chunk(repo.page(points.firstPage(p1)).patch(0));
        Points.Pending p2 = points.packed(p1, changes(0, 6), 4096); // 40 % live: repacked, p1's pack unnamed
        String second = ObjectKeys.chunk(repo.page(points.firstPage(p2)).patch(0));
        points.forgetAndCollect(clock, memory, full, p1);

        assertThat(memory.keys()).contains(second).doesNotContain(first);
        points.assertRestores(p2, tmp);
        assertThat(points.verify(true).problems()).isEmpty();
    }

    @Test
    void verifyFindsADamagedPackEvenAfterReadingItIntact(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(16);
        Points.Pending p1 = points.packed(full, changes(0, 3), 4096);
        points.assertRestores(p1, tmp); // the readers' cache now holds the pack, intact
        assertThat(points.verify(true).chunks()).as("16 chunks and 1 pack").isEqualTo(17);
        String pack = ObjectKeys.chunk(repo.page(points.firstPage(p1)).patch(0));
        VerifierTest.flipAByte(memory, pack);
        assertThat(points.verify(true).problems()).singleElement().satisfies(p -> {
            assertThat(p.key()).isEqualTo(pack);
            assertThat(p.kind()).isEqualTo(Problem.Kind.CORRUPT);
            assertThat(p.affected())
                    .containsExactly(new PointRef("vm1", p1.manifest().id()));
        });
    }

    @Test
    void aPageNamingAPackSlotOnAnotherBaseIsReportedByVerifyAndRefusedByARestore(@TempDir Path tmp) {
        Points.Pending full = points.full(16);
        Points.Pending p1 = points.packed(full, changes(0, 2), 4096);
        IndexPage page = repo.page(points.firstPage(p1));
        Digest pack = page.patch(0);
        // a page that says entry 0's base is chunk 5's
        IndexPage bad = page.copy();
        bad.setPacked(0, page.get(5), pack, page.slotBytes(0), page.packBytes(pack));
        Digest badPage = put(ObjectKeys::page, bad.toBytes());
        Digest root = put(
                ObjectKeys::root, new IndexRoot((long) PER_PAGE * CHUNK, CHUNK, PER_PAGE, List.of(badPage)).toBytes());
        var badPoint = points.manifest(Optional.of(full), root, full.image()).manifest();
        repo.commit(badPoint);

        assertThat(points.verify(true).problems()).singleElement().satisfies(p -> {
            assertThat(p.key()).isEqualTo(ObjectKeys.chunk(pack));
            // the good page of p1 names the same pack; the bad one is found whichever page verify reads last
            assertThat(p.detail())
                    .contains("pack slot is for base", "its index page names " + page.get(5))
                    .contains("index page " + ObjectKeys.page(badPage) + ", entry 0");
        });
        assertThatThrownBy(() -> new Restorer(repo, 2)
                        .restoreDisk(badPoint, Points.DISK, tmp.resolve("bad.raw"), Restorer.Progress.NONE))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(ObjectKeys.chunk(pack))
                .hasMessageContaining("run `tidemark verify`");
        assertThat(tmp.resolve("bad.raw")).doesNotExist();
    }

    /** Stores {@code plain} under its content's name as the repository would, bypassing its checks. */
    private Digest put(java.util.function.Function<Digest, String> keyOf, byte[] plain) {
        Digest d = Digest.sha256(plain);
        String key = keyOf.apply(d);
        memory.putIfAbsent(key, ObjectCodec.encode(plain, plain.length, key, null));
        return d;
    }

    private static Map<Integer, Integer> changes(int from, int to) {
        return IntStream.range(from, to).boxed().collect(Collectors.toMap(c -> c, c -> 8192));
    }

    private Set<String> chunkKeys() {
        return memory.keys().stream()
                .filter(k -> k.startsWith(ObjectKeys.CHUNKS))
                .collect(Collectors.toCollection(HashSet::new));
    }
}
