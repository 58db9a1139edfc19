package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.ChunkPatch.Range;
import io.tidemark.workers.nbd.Extent;
import java.util.BitSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which dirty chunks an incremental reads as ranges and stores as patches (ADR 15). */
class PatchPlanTest {

    private static final int CHUNK = 256 * 1024;
    private static final int GRAIN = 16 * 1024;
    private static final long SIZE = 64L * CHUNK;

    private static PatchPlan plan(List<Extent> extents, int maxPatchBytes) {
        BitSet dirty = DiskBackup.chunksToRead(extents, true, CHUNK);
        return PatchPlan.of(extents, dirty, CHUNK, SIZE, maxPatchBytes);
    }

    private static Extent dirty(long offset, long length) {
        return new Extent(offset, length, Extent.DIRTY);
    }

    private static Extent clean(long offset, long length) {
        return new Extent(offset, length, 0);
    }

    @Test
    void scatteredGrainsBecomeRangesOfTheirChunkAndTouchingOnesMerge() {
        PatchPlan p = plan(
                List.of(
                        clean(0, 3L * GRAIN),
                        dirty(3L * GRAIN, GRAIN),
                        clean(4L * GRAIN, GRAIN),
                        dirty(5L * GRAIN, GRAIN),
                        dirty(6L * GRAIN, GRAIN), // QEMU may split a run; touching ranges are one
                        clean(7L * GRAIN, SIZE - 7L * GRAIN)),
                CHUNK / 4);
        assertThat(p.ranges()).containsOnlyKeys(0L);
        assertThat(p.ranges().get(0L)).containsExactly(new Range(3 * GRAIN, GRAIN), new Range(5 * GRAIN, 2 * GRAIN));
        assertThat(p.bytes()).isEqualTo(3L * GRAIN);
        assertThat(p.chunks().cardinality()).isEqualTo(1);
    }

    @Test
    void aDirtyRunAcrossAChunkBoundaryIsSplitAndAChunkPastTheBoundIsLeftWhole() {
        PatchPlan p = plan(
                List.of(
                        clean(0, CHUNK - GRAIN),
                        dirty(CHUNK - GRAIN, 2L * GRAIN), // last grain of chunk 0, first of chunk 1
                        clean(CHUNK + GRAIN, 2L * CHUNK - GRAIN),
                        dirty(3L * CHUNK, 5L * GRAIN), // 80 KiB of chunk 3: past a quarter
                        clean(3L * CHUNK + 5L * GRAIN, SIZE - 3L * CHUNK - 5L * GRAIN)),
                CHUNK / 4);
        assertThat(p.ranges().get(0L)).containsExactly(new Range(CHUNK - GRAIN, GRAIN));
        assertThat(p.ranges().get(1L)).containsExactly(new Range(0, GRAIN));
        assertThat(p.ranges()).doesNotContainKey(3L);
        assertThat(p.chunks().stream().boxed().toList()).containsExactly(0, 1);
    }

    @Test
    void aWhollyDirtyDiskPlansNoPatchAndAZeroBoundPlansNone() {
        assertThat(plan(List.of(dirty(0, SIZE)), CHUNK / 4).chunks().isEmpty()).isTrue();
        PatchPlan none = plan(List.of(dirty(0, GRAIN), clean(GRAIN, SIZE - GRAIN)), 0);
        assertThat(none.chunks().isEmpty()).isTrue();
    }
}
