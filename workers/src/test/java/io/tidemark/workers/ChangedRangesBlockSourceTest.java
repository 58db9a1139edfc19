package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.hypervisor.ChangedRange;
import io.tidemark.workers.nbd.Extent;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class ChangedRangesBlockSourceTest {

    private static final BlockSource DISK = new BlockSource() {
        @Override
        public long size() {
            return 1000;
        }

        @Override
        public List<Extent> extents(String context, long offset, long length) {
            return List.of(new Extent(offset, length, Extent.ZERO));
        }

        @Override
        public CompletableFuture<byte[]> read(long offset, int length) {
            return CompletableFuture.completedFuture(new byte[length]);
        }

        @Override
        public void close() {}
    };

    @Test
    void theChangedRangesAnswerTheirContextAsDirtyExtentsCoveringExactlyTheRangeAsked() {
        BlockSource s = new ChangedRangesBlockSource(
                DISK, List.of(new ChangedRange(100, 50), new ChangedRange(150, 10), new ChangedRange(900, 200)));

        assertThat(s.extents(ChangedRangesBlockSource.CONTEXT, 0, 1000))
                .containsExactly(
                        new Extent(0, 100, 0),
                        new Extent(100, 50, Extent.DIRTY),
                        new Extent(150, 10, Extent.DIRTY),
                        new Extent(160, 740, 0),
                        new Extent(900, 100, Extent.DIRTY));
        assertThat(s.extents(ChangedRangesBlockSource.CONTEXT, 120, 20))
                .containsExactly(new Extent(120, 20, Extent.DIRTY));
        assertThat(s.extents(ChangedRangesBlockSource.CONTEXT, 200, 300)).containsExactly(new Extent(200, 300, 0));
        // other contexts are the disk's
        assertThat(s.extents(BlockSource.ALLOCATION, 0, 1000)).containsExactly(new Extent(0, 1000, Extent.ZERO));
    }
}
