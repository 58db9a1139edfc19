package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.workers.nbd.Extent;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The read/hash/store pipeline of one disk reuses its chunk buffers: however many chunks a disk
 * has, it hands the source at most as many buffers as chunks in flight, and reuse never mixes one
 * chunk's bytes into another's (every stored chunk reads back as the disk's bytes at its offset).
 */
class DiskBackupBuffersTest {

    private static final int CHUNK = 256 << 10;
    private static final int CHUNKS = 60;
    private static final int IN_FLIGHT = 4;

    @Test
    void aDiskOfManyChunksUsesAtMostOneBufferPerChunkInFlightAndStoresEachChunksOwnBytes() {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());
        assertThat(repo.config().chunkSize()).isEqualTo(CHUNK);
        Set<byte[]> buffers = Collections.synchronizedSet(Collections.newSetFromMap(new IdentityHashMap<>()));
        ExecutorService io = Executors.newFixedThreadPool(3);
        ExecutorService cpu = Executors.newFixedThreadPool(4);
        try {
            BlockSource source = new AsyncSource((long) CHUNKS * CHUNK, 0, io, DiskBackupBuffersTest::content) {
                @Override
                public CompletableFuture<Void> readInto(long offset, int length, byte[] into) {
                    buffers.add(into);
                    return CompletableFuture.runAsync(
                            () -> System.arraycopy(content(offset, length), 0, into, 0, length), io);
                }
            };
            DiskBackup.Outcome out = new DiskBackup(repo, cpu, IN_FLIGHT)
                    .run(source, Optional.empty(), repo.newIndex(source.size(), Optional.empty()));

            assertThat(out.chunksRead()).isEqualTo(CHUNKS);
            assertThat(buffers).hasSizeLessThanOrEqualTo(IN_FLIGHT);
            IndexRoot root = repo.root(out.index());
            int n = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repo.page(root.pages().get(p));
                for (int i = 0; i < root.entriesInPage(p); i++, n++) {
                    Digest d = page.get(i);
                    assertThat(repo.chunk(d, CHUNK)).as("chunk %d", n).isEqualTo(content((long) n * CHUNK, CHUNK));
                }
            }
            assertThat(n).isEqualTo(CHUNKS);
        } finally {
            io.shutdownNow();
            cpu.shutdownNow();
        }
    }

    /**
     * A chunk that reads as zeros is recorded as {@link Digest#ZERO} where its read completes: only
     * the other chunks are handed to the hashing and store threads (a full of a half-empty disk
     * spends no thread hand-off, wake-up or store on its zeros).
     */
    @Test
    void zeroChunksAreRecordedWithoutAHandOffToTheStoreThreads() {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());
        ExecutorService io = Executors.newFixedThreadPool(3);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        AtomicInteger handedOff = new AtomicInteger();
        ExecutorService cpu = new java.util.concurrent.AbstractExecutorService() {
            @Override
            public void execute(Runnable command) {
                handedOff.incrementAndGet();
                pool.execute(command);
            }

            @Override
            public void shutdown() {
                pool.shutdown();
            }

            @Override
            public List<Runnable> shutdownNow() {
                return pool.shutdownNow();
            }

            @Override
            public boolean isShutdown() {
                return pool.isShutdown();
            }

            @Override
            public boolean isTerminated() {
                return pool.isTerminated();
            }

            @Override
            public boolean awaitTermination(long timeout, java.util.concurrent.TimeUnit unit)
                    throws InterruptedException {
                return pool.awaitTermination(timeout, unit);
            }
        };
        try {
            // allocated: every chunk is read
            BlockSource source = new AsyncSource((long) CHUNKS * CHUNK, 0, io, DiskBackupBuffersTest::content);
            DiskBackup.Outcome out = new DiskBackup(repo, cpu, IN_FLIGHT)
                    .run(source, Optional.empty(), repo.newIndex(source.size(), Optional.empty()));

            assertThat(out.chunksRead()).isEqualTo(CHUNKS);
            assertThat(out.bytesRead()).isEqualTo((long) CHUNKS * CHUNK);
            assertThat(handedOff).hasValue(CHUNKS - CHUNKS / 3); // every third chunk is zeros
            IndexRoot root = repo.root(out.index());
            int n = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repo.page(root.pages().get(p));
                for (int i = 0; i < root.entriesInPage(p); i++, n++) {
                    assertThat(page.get(i).isZero()).as("chunk %d", n).isEqualTo(n % 3 == 2);
                }
            }
            assertThat(n).isEqualTo(CHUNKS);
        } finally {
            io.shutdownNow();
            pool.shutdownNow();
        }
    }

    @Test
    void theBackupMemorySettingBoundsTheChunksInFlight() {
        assertThat(BackupWorker.chunksInFlight(BackupWorker.DEFAULT_BACKUP_MEMORY, CHUNK))
                .isEqualTo(16);
        assertThat(BackupWorker.chunksInFlight(64L << 20, CHUNK)).isEqualTo(128);
        assertThat(BackupWorker.chunksInFlight(1L << 20, CHUNK)).isEqualTo(2);
        assertThat(BackupWorker.chunksInFlight(1, CHUNK)).isEqualTo(2);
    }

    /** Distinct bytes per chunk, every third chunk all zeros. */
    private static byte[] content(long offset, int length) {
        byte[] b = new byte[length];
        long chunk = offset / CHUNK;
        if (chunk % 3 != 2) {
            new Random(chunk).nextBytes(b);
        }
        return b;
    }

    /**
     * A zero chunk recorded on the reader's thread can fail there: an incremental's first entry in
     * a page reads the parent's page. That failure fails the backup, naming the page, and frees the
     * chunk's slot, so the backup neither hangs in its drain nor reports success.
     */
    @Test
    void aZeroChunkWhoseParentPageCannotBeReadFailsTheBackupInsteadOfHangingIt() {
        InMemoryObjectTarget target = new InMemoryObjectTarget();
        Repository first = Repository.openOrInit(target, RepositoryConfig.defaults());
        long size = (long) CHUNKS * CHUNK;
        io.tidemark.repository.DiskIndexBuilder full = first.newIndex(size, Optional.empty());
        for (int c = 0; c < CHUNKS; c++) {
            byte[] data = content((long) c * CHUNK, CHUNK);
            full.set(c, first.putChunk(data, CHUNK).digest());
        }
        Digest parent = full.finish();
        List<String> pages = target.keys().stream()
                .filter(k -> k.startsWith(io.tidemark.format.ObjectKeys.PAGES))
                .toList();
        assertThat(pages).isNotEmpty();
        pages.forEach(target::delete); // a damaged primary: the parent's index pages are gone
        Repository repo = Repository.open(target); // no page of the parent in any cache
        IndexRoot parentRoot = repo.root(parent);
        ExecutorService io = Executors.newFixedThreadPool(2);
        ExecutorService cpu = Executors.newFixedThreadPool(2);
        try {
            BlockSource zeros = new AsyncSource(size, 1, io, (offset, length) -> new byte[length]); // all dirty
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                    java.time.Duration.ofSeconds(30),
                    () -> org.assertj.core.api.Assertions.assertThatThrownBy(() -> new DiskBackup(repo, cpu, IN_FLIGHT)
                                    .run(
                                            zeros,
                                            Optional.of("qemu:dirty-bitmap:tm"),
                                            repo.newIndex(size, Optional.of(parentRoot))))
                            .hasMessageContaining(
                                    pages.get(0).substring(pages.get(0).lastIndexOf('/') + 1)));
        } finally {
            io.shutdownNow();
            cpu.shutdownNow();
        }
    }

    /**
     * A disk of {@code size} bytes, one extent of {@code flags} over any range asked for, whose reads
     * return {@code bytes} of the range, completed on {@code io}.
     */
    private static class AsyncSource implements BlockSource {
        private final long size;
        private final int flags;
        private final ExecutorService io;
        private final java.util.function.BiFunction<Long, Integer, byte[]> bytes;

        AsyncSource(
                long size, int flags, ExecutorService io, java.util.function.BiFunction<Long, Integer, byte[]> bytes) {
            this.size = size;
            this.flags = flags;
            this.io = io;
            this.bytes = bytes;
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public List<Extent> extents(String context, long offset, long length) {
            return List.of(new Extent(offset, length, flags));
        }

        @Override
        public CompletableFuture<byte[]> read(long offset, int length) {
            return CompletableFuture.supplyAsync(() -> bytes.apply(offset, length), io);
        }

        @Override
        public void close() {}
    }
}
