package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link RawFileSink}: writeback while the restore runs, a complete image or none. */
class RawFileSinkTest {

    private static final int PIECE = 256 * 1024;
    private static final int PIECES = 32; // 8 MiB

    @TempDir
    Path dir;

    /** Writes PIECES random pieces from four threads, in reverse order; returns the expected image. */
    private static byte[] writeAll(RawFileSink sink) throws Exception {
        byte[] image = new byte[PIECES * PIECE];
        new Random(3).nextBytes(image);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> writes = new ArrayList<>();
            for (int i = PIECES - 1; i >= 0; i--) {
                int piece = i;
                writes.add(pool.submit(() -> {
                    byte[] data = new byte[PIECE];
                    System.arraycopy(image, piece * PIECE, data, 0, PIECE);
                    sink.write((long) piece * PIECE, data, PIECE);
                }));
            }
            for (Future<?> w : writes) {
                w.get();
            }
        } finally {
            pool.shutdown();
        }
        return image;
    }

    @Test
    void writtenBytesAreFsyncedInTheBackgroundWhileWritingNotOnlyAtCommit() throws Exception {
        Path out = dir.resolve("disk.raw");
        byte[] image;
        long writebacks;
        try (RawFileSink sink = RawFileSink.create(out, (long) PIECES * PIECE + 4096, 1 << 20)) {
            image = writeAll(sink);
            sink.commit();
            writebacks = sink.writebacks();
        }
        // 8 MiB written with a writeback every 1 MiB: at least the first one ran before the commit
        assertThat(writebacks).isBetween(1L, 8L);
        byte[] restored = Files.readAllBytes(out);
        assertThat(restored).hasSize(PIECES * PIECE + 4096);
        assertThat(java.util.Arrays.copyOf(restored, image.length)).isEqualTo(image);
        assertThat(java.util.Arrays.copyOfRange(restored, image.length, restored.length))
                .containsOnly((byte) 0);
        assertThat(dir.resolve("disk.raw.partial")).doesNotExist();
    }

    @Test
    void closedWithoutACommitWhileAWritebackRunsItLeavesNoImageNorPartialFile() throws Exception {
        Path out = dir.resolve("disk.raw");
        try (RawFileSink sink = RawFileSink.create(out, (long) PIECES * PIECE, 1)) { // a writeback per write
            writeAll(sink);
        }
        assertThat(out).doesNotExist();
        assertThat(dir.resolve("disk.raw.partial")).doesNotExist();
    }

    @Test
    void theDefaultSinkWritesBackEvery64MiB() throws IOException {
        assertThat(BackgroundWriteback.DEFAULT_EVERY_BYTES).isEqualTo(64L << 20);
        try (RawFileSink sink = RawFileSink.create(dir.resolve("small.raw"), 4096)) {
            sink.write(0, new byte[4096], 4096);
            sink.commit();
            assertThat(sink.writebacks()).isZero(); // below the threshold: the commit's fsync alone
        }
    }
}
