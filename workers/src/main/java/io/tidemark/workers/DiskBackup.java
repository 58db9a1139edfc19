package io.tidemark.workers;

import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.format.Digest;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.workers.nbd.Extent;
import java.util.BitSet;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Reads the chunks of one captured disk that need reading and stores them: for an incremental,
 * the chunks overlapping dirty extents; for a full, every chunk that does not read as zeros.
 * Reads are pipelined ({@code readsInFlight}) and hashing/compression runs on {@code cpu}; memory
 * stays bounded by the number of chunks in flight, whatever the disk size: a chunk holds a permit
 * of the window and one of at most {@code readsInFlight} reused buffers from its read until it is
 * stored, so the hand-over from the reader to the hashing and compression workers is a bounded
 * queue and a backup allocates no buffer per chunk. Reads are paced by the job's {@link ReadLimit}.
 */
final class DiskBackup {

    /** What reading one disk did. */
    record Outcome(Digest index, long bytesRead, long bytesNew, long chunksRead) {}

    private final Repository repository;
    private final ExecutorService cpu;
    private final int readsInFlight;
    private final ReadLimit readLimit;

    DiskBackup(Repository repository, ExecutorService cpu, int readsInFlight) {
        this(repository, cpu, readsInFlight, ReadLimit.NONE);
    }

    /** @param readLimit paces the reads (the job's read bandwidth limit), shared by the job's disks */
    DiskBackup(Repository repository, ExecutorService cpu, int readsInFlight, ReadLimit readLimit) {
        this.repository = repository;
        this.cpu = cpu;
        this.readsInFlight = readsInFlight;
        this.readLimit = readLimit;
    }

    /** Told how far the reading of one disk got, from the reading threads. */
    interface Progress {
        Progress NONE = new Progress() {};

        /** The bytes this disk's read will read, once known (before the first read). */
        default void toRead(long bytes) {}

        /** {@code bytes} more were read. */
        default void read(long bytes) {}
    }

    /**
     * @param dirtyContext the dirty-bitmap context to read only changed chunks, or empty for a full
     * @param index where the digests go (with the parent's index as its base for an incremental)
     */
    Outcome run(BlockSource source, Optional<String> dirtyContext, DiskIndexBuilder index) {
        return run(source, dirtyContext, index, Progress.NONE);
    }

    /** As {@link #run(BlockSource, Optional, DiskIndexBuilder)}, telling {@code progress} how far it got. */
    Outcome run(BlockSource source, Optional<String> dirtyContext, DiskIndexBuilder index, Progress progress) {
        int chunkSize = repository.config().chunkSize();
        long size = source.size();
        BitSet chunks = chunksToRead(source, dirtyContext, chunkSize, size);
        long toRead = (long) chunks.cardinality() * chunkSize;
        long lastChunk = size == 0 ? -1 : (size - 1) / chunkSize;
        if (lastChunk >= 0 && chunks.get((int) lastChunk)) {
            toRead -= (long) chunkSize - (size - lastChunk * chunkSize); // the last chunk may be short
        }
        progress.toRead(toRead);
        Semaphore window = new Semaphore(readsInFlight);
        // a chunk's buffer is reused once it is stored: at most readsInFlight buffers, allocated as needed
        Queue<byte[]> buffers = new ConcurrentLinkedQueue<>();
        AtomicLong bytesRead = new AtomicLong();
        AtomicLong bytesNew = new AtomicLong();
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        long count = 0;
        for (int c = chunks.nextSetBit(0); c >= 0; c = chunks.nextSetBit(c + 1)) {
            if (failure.get() != null) {
                break;
            }
            long chunkNo = c;
            long offset = chunkNo * chunkSize;
            int length = (int) Math.min(chunkSize, size - offset);
            acquire(window);
            readLimit.acquire(length);
            count++;
            byte[] pooled = buffers.poll();
            byte[] data = pooled != null ? pooled : new byte[chunkSize];
            source.readInto(offset, length, data).whenComplete((ignored, readError) -> {
                if (readError != null) {
                    failure.compareAndSet(null, unwrap(readError));
                    buffers.add(data);
                    window.release();
                    return;
                }
                bytesRead.addAndGet(length);
                progress.read(length);
                cpu.execute(() -> {
                    try {
                        Repository.StoredChunk stored = repository.putChunk(data, length);
                        index.set(chunkNo, stored.digest());
                        if (stored.added()) {
                            bytesNew.addAndGet(length);
                        }
                    } catch (RuntimeException e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        buffers.add(data);
                        window.release();
                    }
                });
            });
        }
        acquire(window, readsInFlight); // drain
        if (failure.get() != null) {
            throw failure.get();
        }
        return new Outcome(index.finish(), bytesRead.get(), bytesNew.get(), count);
    }

    /** The chunk numbers to read, from the dirty map (incremental) or the allocation map (full). */
    static BitSet chunksToRead(BlockSource source, Optional<String> dirtyContext, int chunkSize, long size) {
        BitSet chunks = new BitSet();
        String context = dirtyContext.orElse(BlockSource.ALLOCATION);
        for (Extent e : source.extents(context, 0, size)) {
            boolean read = dirtyContext.isPresent() ? e.dirty() : !e.zero();
            if (read && e.length() > 0) {
                int first = Math.toIntExact(e.offset() / chunkSize);
                int last = Math.toIntExact((e.offset() + e.length() - 1) / chunkSize);
                chunks.set(first, last + 1);
            }
        }
        return chunks;
    }

    private static RuntimeException unwrap(Throwable t) {
        Throwable c = t;
        while ((c instanceof CompletionException || c instanceof ExecutionException) && c.getCause() != null) {
            c = c.getCause();
        }
        if (c instanceof TidemarkException te) {
            return te;
        }
        return new RetriableException("reading the export failed: " + c.getMessage(), c);
    }

    private static void acquire(Semaphore s) {
        acquire(s, 1);
    }

    private static void acquire(Semaphore s, int permits) {
        try {
            s.acquire(permits);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("backup interrupted", e);
        }
    }
}
