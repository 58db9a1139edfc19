package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.PointFootprint;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restore points with patched chunks (ADR 15) in the repository's maintenance: a restore applies
 * base and patch, GC keeps the patches and bases a kept point needs and sweeps the ones none
 * needs, and verify finds a missing or damaged patch and a patch on the wrong base.
 */
class PatchedPointsTest {

    final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T00:00:00Z"));
    InMemoryObjectTarget memory;
    Repository repo;
    Points points;

    @BeforeEach
    void setUp() {
        memory = new InMemoryObjectTarget("patched");
        repo = Repository.openOrInit(memory, GarbageCollectorTest.CONFIG);
        points = new Points(repo, "vm1", 16, 15);
    }

    @Test
    void patchedPointsRestoreByteForByteWithOnePatchPerChunkHoweverManyIncrementals(@TempDir Path tmp)
            throws IOException {
        Points.Pending full = points.full(8);
        Points.Pending p1 = points.patched(full, Map.of(1, 4096, 3, 0, 12, 100), 4096); // 12: a zero chunk
        Points.Pending p2 = points.patched(p1, Map.of(1, 20000, 5, 60000), 512);
        Points.Pending p3 = points.patched(p2, Map.of(1, 4096), 4096); // over p1's range: the newest wins
        for (Points.Pending p : List.of(full, p1, p2, p3)) {
            points.assertRestores(p, tmp);
        }
        IndexPage page =
                repo.page(repo.root(Digest.fromHex(p3.manifest().disks().get(0).index()))
                        .pages()
                        .get(0));
        ChunkPatch chunk1 = repo.patch(page.patch(1));
        assertThat(chunk1.base()).as("always the full chunk, never a patch").isEqualTo(page.get(1));
        assertThat(chunk1.ranges()).containsExactly(new ChunkPatch.Range(4096, 4096), new ChunkPatch.Range(20000, 512));
        PointFootprint footprint = PointFootprint.of(repo, p3.manifest());
        assertThat(footprint.missing()).isZero();
    }

    @Test
    void gcKeepsThePatchesAndBasesOfKeptPointsAndSweepsTheRest(@TempDir Path tmp) throws IOException {
        Points.Pending full = points.full(8);
        Points.Pending p1 = points.patched(full, Map.of(1, 4096, 2, 0), 4096);
        Points.Pending p2 = points.patched(p1, Map.of(1, 8192), 4096); // chunk 1: a new patch of both ranges
        String p1Patch1 = ObjectKeys.chunk(patchOf(p1, 1));
        String p2Patch1 = ObjectKeys.chunk(patchOf(p2, 1));
        String base1 = ObjectKeys.chunk(repo.page(points.firstPage(p2)).get(1));
        GarbageCollector.Result r = points.forgetAndCollect(clock, memory, full, p1);

        assertThat(memory.keys()).as("p2's patch and its base").contains(p2Patch1, base1);
        assertThat(memory.keys())
                .as("p1's patch of chunk 1, which no kept point needs")
                .doesNotContain(p1Patch1);
        assertThat(r.swept(ObjectKeys.CHUNKS)).isEqualTo(1);
        points.assertRestores(p2, tmp);
        assertThat(points.verify(true).problems()).isEmpty();
    }

    @Test
    void verifyFindsAMissingOrDamagedPatchAndAPatchOnAnotherBase() {
        Points.Pending full = points.full(8);
        Points.Pending p1 = points.patched(full, Map.of(1, 4096, 2, 0), 4096);
        assertThat(points.verify(true).chunks()).as("8 chunks and 2 patches").isEqualTo(10);

        String damaged = ObjectKeys.chunk(patchOf(p1, 1));
        VerifierTest.flipAByte(memory, damaged);
        assertThat(points.verify(false).problems()).isEmpty();
        assertThat(points.verify(true).problems()).singleElement().satisfies(p -> {
            assertThat(p.key()).isEqualTo(damaged);
            assertThat(p.kind()).isEqualTo(Problem.Kind.CORRUPT);
            assertThat(p.affected())
                    .containsExactly(new PointRef("vm1", p1.manifest().id()));
        });

        String missing = ObjectKeys.chunk(patchOf(p1, 2));
        memory.delete(missing);
        assertThat(points.verify(false).problems()).anySatisfy(p -> {
            assertThat(p.key()).isEqualTo(missing);
            assertThat(p.kind()).isEqualTo(Problem.Kind.MISSING);
        });
    }

    @Test
    void aPatchForAnotherBaseIsReportedByVerifyAndRefusedByARestore(@TempDir Path tmp) {
        Points.Pending full = points.full(8);
        // a patch written for chunk 2's base, named by the index at chunk 1
        Digest base2 = repo.page(points.firstPage(full)).get(2);
        Digest wrong = repo.putPatch(ChunkPatch.of(base2, 64 * 1024, Map.of(0, new byte[] {1, 2, 3})))
                .digest();
        var index = repo.newIndex(
                16L * 64 * 1024,
                Optional.of(
                        repo.root(Digest.fromHex(full.manifest().disks().get(0).index()))));
        index.setPatched(1, repo.page(points.firstPage(full)).get(1), wrong);
        var bad =
                points.manifest(Optional.of(full), index.finish(), full.image()).manifest();
        repo.commit(bad);

        assertThat(points.verify(true).problems()).singleElement().satisfies(p -> assertThat(p.detail())
                .contains("patch is for base", "its index page names"));
        assertThatThrownBy(() -> new Restorer(repo, 2)
                        .restoreDisk(bad, Points.DISK, tmp.resolve("bad.raw"), Restorer.Progress.NONE))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(ObjectKeys.chunk(wrong))
                .hasMessageContaining("run `tidemark verify`");
        assertThat(tmp.resolve("bad.raw")).doesNotExist();
    }

    private Digest patchOf(Points.Pending p, int chunk) {
        return repo.page(points.firstPage(p)).patch(chunk);
    }
}
