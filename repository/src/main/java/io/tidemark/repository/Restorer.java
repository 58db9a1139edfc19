package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.PatchRef;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Rebuilds a disk image from one restore point into a {@link DiskSink}. Every restore point is
 * logically full, so a restore reads the point's own index root, its pages and the non-zero chunks
 * they list, nothing else: the cost does not depend on how many incrementals precede it. Chunks are
 * fetched in parallel through {@link Repository#chunkInto} into reused buffers, each verified
 * against its digest (a mismatch fails the restore with a {@link
 * io.tidemark.core.CorruptObjectException} naming the object); zero chunks are never fetched nor
 * written, so the image stays sparse. A patched chunk (ADR 15) is its base chunk with its one patch
 * applied: two objects, whatever the chain before it. The SHA-256 of the whole image content is computed in disk
 * order while restoring, without reading the image back. Memory is bounded by {@link #withMemory}.
 * The sink publishes the image only when it is complete.
 */
public final class Restorer {

    private static final Logger log = LoggerFactory.getLogger(Restorer.class);

    /** Receives progress: bytes of the disk done so far, of {@code total}. */
    @FunctionalInterface
    public interface Progress {
        void update(long done, long total);

        Progress NONE = (done, total) -> {};
    }

    /**
     * What a restore produced.
     *
     * @param image the image as its sink names it (a path, {@code rbd:pool/image})
     * @param format {@code raw}, {@code qcow2} or {@code rbd}
     * @param sizeBytes the disk's virtual size
     * @param bytesFetched plaintext bytes of the chunks fetched (the non-zero ones)
     * @param chunksFetched chunks fetched
     * @param sha256 SHA-256 of the image's whole content (hex), holes included; empty when the
     *     restorer was made {@link #withoutImageDigest() without it}
     */
    public record Result(
            String image, String format, long sizeBytes, long bytesFetched, long chunksFetched, String sha256) {}

    /** Chunks (holes included) between the one being hashed and the newest one submitted. */
    private static final int PENDING_LIMIT = 4096;

    /** What a restore may hold in chunk buffers unless told otherwise: 32 MiB. */
    public static final long DEFAULT_MEMORY_BYTES = 32L << 20;

    private final Repository repository;
    private final int parallelism;
    private final boolean imageDigest;
    private final long memoryBytes;

    public Restorer(Repository repository, int parallelism) {
        this(repository, parallelism, true, DEFAULT_MEMORY_BYTES);
    }

    private Restorer(Repository repository, int parallelism, boolean imageDigest, long memoryBytes) {
        this.repository = repository;
        this.parallelism = Math.max(1, parallelism);
        this.imageDigest = imageDigest;
        this.memoryBytes = memoryBytes;
    }

    /**
     * A restorer that does not compute the whole image's SHA-256 ({@link Result#sha256()} is
     * empty). Every chunk is still verified against its digest; what is saved is hashing the holes
     * of a large sparse disk (a 1 TiB disk is 1 TiB of SHA-256 input, whatever it holds).
     */
    public Restorer withoutImageDigest() {
        return new Restorer(repository, parallelism, false, memoryBytes);
    }

    /**
     * A restorer whose chunk buffers (chunks being fetched, decoded, written or waiting to be hashed
     * in disk order, and each fetch thread's stored object) take at most {@code bytes}; it fetches
     * fewer chunks at once (and, below two chunks per thread, with fewer threads) to stay within
     * them. At least two chunks' worth is always used. Default {@link #DEFAULT_MEMORY_BYTES}.
     */
    public Restorer withMemory(long bytes) {
        if (bytes <= 0) {
            throw new PermanentException("restore memory must be positive, got " + bytes + " bytes");
        }
        return new Restorer(repository, parallelism, imageDigest, bytes);
    }

    /** The disk {@code diskName} of {@code manifest}, or a {@link PermanentException} listing its disks. */
    public static DiskEntry disk(Manifest manifest, String diskName) {
        return manifest.disk(diskName)
                .orElseThrow(() -> new PermanentException("restore point " + manifest.id() + " of " + manifest.vm()
                        + " has no disk '" + diskName + "'; it has "
                        + manifest.disks().stream().map(DiskEntry::name).toList()));
    }

    /** Writes disk {@code diskName} of {@code manifest} to {@code out} as a raw (sparse) image. */
    public Result restoreDisk(Manifest manifest, String diskName, Path out, Progress progress) {
        DiskEntry disk = disk(manifest, diskName);
        try (RawFileSink sink = RawFileSink.create(out, disk.sizeBytes())) {
            return restore(manifest, diskName, sink, progress);
        }
    }

    /**
     * Writes disk {@code diskName} of {@code manifest} into {@code sink} and commits it. The caller
     * closes the sink (which discards the image if this failed).
     *
     * <p>A pipeline of three steps: the point's index is read page by page into chunk references
     * (in disk order); fetch threads {@link #resolve resolve} each non-zero reference to its verified
     * bytes in a pooled buffer and write them into the sink at the chunk's offset; this thread takes
     * the chunks back in disk order, hashes them into the image digest and returns their buffers.
     * At most {@link Window#slots} chunks are in flight, so memory stays within {@link #withMemory}.
     */
    public Result restore(Manifest manifest, String diskName, DiskSink sink, Progress progress) {
        DiskEntry disk = disk(manifest, diskName);
        IndexRoot root = repository.root(Digest.fromHex(disk.index()));
        if (root.diskSize() != disk.sizeBytes()) {
            throw new PermanentException("the index " + disk.index() + " of disk '" + diskName + "' in restore point "
                    + manifest.id() + " is for " + root.diskSize() + " bytes, the manifest says " + disk.sizeBytes()
                    + "; run `tidemark verify`");
        }
        long total = root.diskSize();
        Window window = Window.of(memoryBytes, root.chunkSize(), parallelism);
        MessageDigest sha = imageDigest ? Digest.newSha256() : null;
        byte[] zeros = sha == null ? null : new byte[root.chunkSize()];
        AtomicLong done = new AtomicLong();
        AtomicLong fetched = new AtomicLong();
        AtomicLong chunks = new AtomicLong();
        int objectBytes = Repository.maxObjectBytes(root.chunkSize());
        ThreadLocal<byte[]> scratch = ThreadLocal.withInitial(() -> new byte[objectBytes]);
        // in disk order: a future per fetched chunk, none for a zero chunk; hashed from the head
        ArrayDeque<Pending> pending = new ArrayDeque<>();
        ArrayDeque<byte[]> free = new ArrayDeque<>();
        int inFlight = 0;
        CompletableFuture<Void> failed = new CompletableFuture<>(); // completed only by a chunk's failure
        ExecutorService pool = Executors.newFixedThreadPool(window.threads(), DaemonThreads.named("restore-fetch"));
        boolean finished = false;
        try {
            long chunkNo = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repository.page(root.pages().get(p));
                for (int i = 0; i < page.size(); i++, chunkNo++) {
                    long offset = chunkNo * root.chunkSize();
                    ChunkRef ref = new ChunkRef(
                            chunkNo,
                            offset,
                            (int) Math.min(root.chunkSize(), total - offset),
                            page.get(i),
                            page.patchRef(i));
                    while (pending.size() >= PENDING_LIMIT) { // a long run of holes: hash what is done
                        if (takeHead(pending, sha, zeros, free, failed)) {
                            inFlight--;
                        }
                    }
                    if (ref.digest().isZero() && ref.patch().isNone()) {
                        pending.add(new Pending(ref, null, null));
                        progress.update(done.addAndGet(ref.length()), total);
                        continue;
                    }
                    while (inFlight >= window.slots()) {
                        if (takeHead(pending, sha, zeros, free, failed)) {
                            inFlight--;
                        }
                    }
                    byte[] buffer = free.isEmpty() ? new byte[root.chunkSize()] : free.removeFirst();
                    pending.add(new Pending(
                            ref,
                            buffer,
                            CompletableFuture.runAsync(
                                            () -> {
                                                resolve(manifest, ref, buffer, scratch.get());
                                                sink.write(ref.offset(), buffer, ref.length());
                                                fetched.addAndGet(ref.length());
                                                chunks.incrementAndGet();
                                                progress.update(done.addAndGet(ref.length()), total);
                                            },
                                            pool)
                                    .whenComplete((ok, e) -> {
                                        if (e != null) {
                                            failed.completeExceptionally(e);
                                        }
                                    })));
                    inFlight++;
                }
            }
            while (!pending.isEmpty()) {
                takeHead(pending, sha, zeros, free, failed);
            }
            finished = true;
        } finally {
            pool.shutdownNow();
            if (!finished) {
                awaitQuiet(pool); // no write may race the caller's close of the sink
            }
        }
        sink.commit();
        return new Result(
                sink.describe(),
                sink.format(),
                total,
                fetched.get(),
                chunks.get(),
                sha == null ? "" : HexFormat.of().formatHex(sha.digest()));
    }

    /**
     * One chunk of the disk: its number, where it goes, how long it is (the last one may be short)
     * and the digest its content must have ({@link Digest#isZero() zero}: a hole).
     */
    /** @param patch the entry's patch (ADR 15, ADR 26), {@link PatchRef#NONE} when it has none */
    record ChunkRef(long index, long offset, int length, Digest digest, PatchRef patch) {}

    /**
     * The resolve step: the verified bytes of {@code ref} into {@code into[0, ref.length())}: its
     * chunk, or its base chunk (zeros for a zero base) with its one patch applied.
     */
    private void resolve(Manifest manifest, ChunkRef ref, byte[] into, byte[] scratch) {
        int n;
        if (ref.digest().isZero()) {
            java.util.Arrays.fill(into, 0, ref.length(), (byte) 0);
            n = ref.length();
        } else {
            n = repository.chunkInto(ref.digest(), into, scratch);
        }
        if (n != ref.length()) {
            throw new PermanentException("chunk " + ref.digest() + " (chunk " + ref.index() + " at offset "
                    + ref.offset() + ") has " + n + " bytes where the index of restore point " + manifest.id()
                    + " expects " + ref.length() + "; run `tidemark verify`");
        }
        if (!ref.patch().isNone()) {
            repository.patchOf(ref.digest(), ref.patch(), ref.length()).applyInto(into);
        }
    }

    /**
     * How many chunks a restore keeps in flight, and with how many fetch threads, so that the chunk
     * buffers ({@code slots} plaintext chunks plus one stored object per thread) fit {@code
     * memoryBytes}: up to four chunks per thread, at least one.
     */
    record Window(int threads, int slots) {
        static Window of(long memoryBytes, int chunkSize, int parallelism) {
            long object = Repository.maxObjectBytes(chunkSize);
            int threads = (int) Math.max(1, Math.min(parallelism, memoryBytes / (object + chunkSize)));
            long left = memoryBytes - threads * object;
            int slots = (int) Math.max(threads, Math.min(4L * threads, left / chunkSize));
            return new Window(threads, slots);
        }
    }

    private record Pending(ChunkRef ref, byte[] buffer, CompletableFuture<Void> fetch) {}

    /**
     * Waits for the oldest pending chunk, hashes it (unless {@code sha} is null) and frees its
     * buffer; true if it was fetched (not a hole).
     */
    private static boolean takeHead(
            ArrayDeque<Pending> pending,
            MessageDigest sha,
            byte[] zeros,
            ArrayDeque<byte[]> free,
            CompletableFuture<Void> failed) {
        Pending head = pending.removeFirst();
        if (head.fetch() == null) {
            if (sha != null) {
                sha.update(zeros, 0, head.ref().length());
            }
            return false;
        }
        await(CompletableFuture.anyOf(head.fetch(), failed)); // any chunk's failure ends the restore now
        if (sha != null) {
            sha.update(head.buffer(), 0, head.ref().length());
        }
        free.addLast(head.buffer());
        return true;
    }

    private static void await(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("restore interrupted", e);
        } catch (ExecutionException e) {
            Throwable cause =
                    e.getCause() instanceof CompletionException c && c.getCause() != null ? c.getCause() : e.getCause();
            if (cause instanceof TidemarkException t) {
                throw t;
            }
            throw new IllegalStateException("restore failed: " + cause, cause);
        }
    }

    private static void awaitQuiet(ExecutorService pool) {
        try {
            if (!pool.awaitTermination(1, TimeUnit.MINUTES)) {
                log.warn("restore fetch threads still running a minute after the restore failed");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SHA-256 of a file, hex. */
    public static String sha256(Path file) {
        MessageDigest md = Digest.newSha256();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            while (ch.read(buf) >= 0) {
                buf.flip();
                md.update(buf);
                buf.clear();
            }
        } catch (IOException e) {
            throw new PermanentException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
