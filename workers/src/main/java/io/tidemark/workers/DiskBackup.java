package io.tidemark.workers;

import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.workers.nbd.Extent;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
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
 * Reads are pipelined ({@code readsInFlight}) and hashing/compression runs on {@code cpu} (a chunk
 * that reads as zeros is recorded where its read completes, with no hand-off); memory
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
    /** The most bytes a chunk's patch may hold (ADR 15); 0: never patch, read dirty chunks whole. */
    private final int maxPatchBytes;

    /** Without a read limit nor patches (tests and probes). */
    DiskBackup(Repository repository, ExecutorService cpu, int readsInFlight) {
        this(repository, cpu, readsInFlight, ReadLimit.NONE, 0);
    }

    /**
     * @param readLimit paces the reads (the job's read bandwidth limit), shared by the job's disks
     * @param maxPatchBytes lets an incremental store a dirty chunk as a patch on its parent's chunk
     *     (ADR 15): only the dirty ranges are read, and a patch holding them (with the parent's patch
     *     of that chunk, if it had one) is stored instead of the whole chunk, as long as it holds at
     *     most this many bytes; past that the chunk is read and stored whole. 0 turns patches off.
     */
    DiskBackup(Repository repository, ExecutorService cpu, int readsInFlight, ReadLimit readLimit, int maxPatchBytes) {
        this.repository = repository;
        this.cpu = cpu;
        this.readsInFlight = readsInFlight;
        this.readLimit = readLimit;
        this.maxPatchBytes = Math.max(0, maxPatchBytes);
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
        List<Extent> extents = source.extents(dirtyContext.orElse(BlockSource.ALLOCATION), 0, size);
        BitSet chunks = chunksToRead(extents, dirtyContext.isPresent(), chunkSize);
        PatchPlan patches = dirtyContext.isPresent() && index.hasParent() && maxPatchBytes > 0
                ? PatchPlan.of(extents, chunks, chunkSize, size, maxPatchBytes)
                : PatchPlan.NONE;
        chunks.andNot(patches.chunks()); // patched chunks take their own path: storePatches
        long toRead = (long) chunks.cardinality() * chunkSize;
        long lastChunk = size == 0 ? -1 : (size - 1) / chunkSize;
        if (lastChunk >= 0 && chunks.get((int) lastChunk)) {
            toRead -= (long) chunkSize - (size - lastChunk * chunkSize); // the last chunk may be short
        }
        progress.toRead(toRead + patches.bytes());
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
                if (Repository.isZeroChunk(data, length)) {
                    // nothing to hash nor store: done here, on the reader's thread, without a hand-off
                    try {
                        index.set(chunkNo, Digest.ZERO);
                    } catch (RuntimeException e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        buffers.add(data);
                        window.release();
                    }
                    return;
                }
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
        count += storePatches(source, patches, index, window, failure, bytesRead, bytesNew, progress);
        acquire(window, readsInFlight); // drain
        if (failure.get() != null) {
            throw failure.get();
        }
        Digest root = index.finish();
        return new Outcome(root, bytesRead.get(), bytesNew.get() + index.patchBytesAdded(), count);
    }

    /**
     * The patch path (ADR 15): for each chunk of {@code plan}, reads its dirty ranges, adds them to
     * the parent's patch of that chunk (if any) and stores the result as a patch on the parent's
     * base chunk; when that patch would hold more than {@link #maxPatchBytes}, reads and stores the
     * chunk whole instead, so a patch never grows past the bound and never stacks on another.
     *
     * @return how many chunks it started
     */
    private long storePatches(
            BlockSource source,
            PatchPlan plan,
            DiskIndexBuilder index,
            Semaphore window,
            AtomicReference<RuntimeException> failure,
            AtomicLong bytesRead,
            AtomicLong bytesNew,
            Progress progress) {
        long count = 0;
        for (Map.Entry<Long, List<ChunkPatch.Range>> e : plan.ranges().entrySet()) {
            if (failure.get() != null) {
                break;
            }
            long chunkNo = e.getKey();
            long offset = chunkNo * plan.chunkSize();
            int length = (int) Math.min(plan.chunkSize(), source.size() - offset);
            DiskIndexBuilder.Entry parent = index.parentEntry(chunkNo);
            acquire(window);
            count++;
            List<CompletableFuture<byte[]>> reads = new ArrayList<>();
            for (ChunkPatch.Range r : e.getValue()) {
                readLimit.acquire(r.length());
                reads.add(source.read(offset + r.offset(), r.length()));
            }
            CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new)).whenComplete((ignored, readError) -> {
                if (readError != null) {
                    failure.compareAndSet(null, unwrap(readError));
                    window.release();
                    return;
                }
                cpu.execute(() -> {
                    try {
                        Map<Integer, byte[]> changed = new TreeMap<>();
                        int read = 0;
                        for (int i = 0; i < reads.size(); i++) {
                            byte[] data = reads.get(i).join();
                            changed.put(e.getValue().get(i).offset(), data);
                            read += data.length;
                        }
                        bytesRead.addAndGet(read);
                        progress.read(read);
                        storePatched(source, chunkNo, offset, length, parent, changed, index, bytesRead, bytesNew);
                    } catch (RuntimeException ex) {
                        failure.compareAndSet(null, ex instanceof CompletionException ? unwrap(ex) : ex);
                    } finally {
                        window.release();
                    }
                });
            });
        }
        return count;
    }

    /** Stores one chunk of the patch path: as a patch within the bound, else whole. */
    private void storePatched(
            BlockSource source,
            long chunkNo,
            long offset,
            int length,
            DiskIndexBuilder.Entry parent,
            Map<Integer, byte[]> changed,
            DiskIndexBuilder index,
            AtomicLong bytesRead,
            AtomicLong bytesNew) {
        ChunkPatch patch = parent.patch().isNone()
                ? ChunkPatch.of(parent.chunk(), length, changed)
                : repository.patchOf(parent.chunk(), parent.patch(), length).with(changed);
        if (patch.dataBytes() <= maxPatchBytes && patch.chunkLength() == length) {
            index.setPatched(chunkNo, patch); // into a pack with the page's other patches (ADR 26)
            return;
        }
        // past the bound: the chunk whole, as the whole-chunk path would have stored it
        readLimit.acquire(length);
        byte[] data = source.read(offset, length).join();
        bytesRead.addAndGet(length);
        Repository.StoredChunk stored = repository.putChunk(data, length);
        index.set(chunkNo, stored.digest());
        if (stored.added()) {
            bytesNew.addAndGet(length);
        }
    }

    /** The chunk numbers to read from {@code extents}: the dirty ones (incremental) or the non-zero ones. */
    static BitSet chunksToRead(List<Extent> extents, boolean incremental, int chunkSize) {
        BitSet chunks = new BitSet();
        for (Extent e : extents) {
            boolean read = incremental ? e.dirty() : !e.zero();
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
