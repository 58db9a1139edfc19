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
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Rebuilds a disk image from one restore point into a {@link DiskSink}. Every restore point is
 * logically full, so a restore reads the point's own index root, its pages and the non-zero chunks
 * they list, nothing else: the cost does not depend on how many incrementals precede it. Chunks are
 * fetched in parallel through {@link Repository#chunk}, which verifies each against its digest (a
 * mismatch fails the restore with a {@link io.tidemark.core.CorruptObjectException} naming the
 * object); zero chunks are never fetched nor written, so the image stays sparse. A patched chunk
 * (ADR 15) is its base chunk with its one patch applied: two objects, whatever the chain before it. The SHA-256 of the
 * whole image content is computed in disk order while restoring, without reading the image back.
 * The sink publishes the image only when it is complete.
 */
public final class Restorer {

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

    private final Repository repository;
    private final int parallelism;
    private final boolean imageDigest;

    public Restorer(Repository repository, int parallelism) {
        this(repository, parallelism, true);
    }

    private Restorer(Repository repository, int parallelism, boolean imageDigest) {
        this.repository = repository;
        this.parallelism = Math.max(1, parallelism);
        this.imageDigest = imageDigest;
    }

    /**
     * A restorer that does not compute the whole image's SHA-256 ({@link Result#sha256()} is
     * empty). Every chunk is still verified against its digest; what is saved is hashing the holes
     * of a large sparse disk (a 1 TiB disk is 1 TiB of SHA-256 input, whatever it holds).
     */
    public Restorer withoutImageDigest() {
        return new Restorer(repository, parallelism, false);
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
        MessageDigest sha = imageDigest ? Digest.newSha256() : null;
        byte[] zeros = new byte[root.chunkSize()];
        AtomicLong done = new AtomicLong();
        AtomicLong fetched = new AtomicLong();
        AtomicLong chunks = new AtomicLong();
        // in disk order: a future per fetched chunk, null for a zero chunk; hashed from the head
        ArrayDeque<Pending> window = new ArrayDeque<>();
        int fetching = 0;
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, DaemonThreads.named("restore-fetch"));
        try {
            long chunkNo = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repository.page(root.pages().get(p));
                for (int i = 0; i < page.size(); i++, chunkNo++) {
                    long offset = chunkNo * root.chunkSize();
                    int length = (int) Math.min(root.chunkSize(), total - offset);
                    Digest d = page.get(i);
                    Digest patch = page.patch(i);
                    if (d.isZero() && patch.isZero()) {
                        window.add(new Pending(null, length));
                        progress.update(done.addAndGet(length), total);
                        continue;
                    }
                    window.add(new Pending(
                            pool.submit(() -> {
                                byte[] plain = repository.chunk(d, patch, length);
                                if (plain.length != length) {
                                    throw new PermanentException("chunk " + d + " has " + plain.length
                                            + " bytes where the index of restore point " + manifest.id()
                                            + " expects " + length + "; run `tidemark verify`");
                                }
                                sink.write(offset, plain, length);
                                fetched.addAndGet(length);
                                chunks.incrementAndGet();
                                progress.update(done.addAndGet(length), total);
                                return plain;
                            }),
                            length));
                    fetching++;
                    while (fetching > parallelism * 4) {
                        if (hashHead(window, sha, zeros)) {
                            fetching--;
                        }
                    }
                }
            }
            while (!window.isEmpty()) {
                hashHead(window, sha, zeros);
            }
        } finally {
            pool.shutdownNow();
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

    private record Pending(Future<byte[]> fetch, int length) {}

    /** Waits for the oldest pending chunk and hashes it (unless {@code sha} is null); true if it was fetched. */
    private static boolean hashHead(ArrayDeque<Pending> window, MessageDigest sha, byte[] zeros) {
        Pending head = window.removeFirst();
        if (head.fetch() == null) {
            if (sha != null) {
                sha.update(zeros, 0, head.length());
            }
            return false;
        }
        byte[] plain = await(head.fetch());
        if (sha != null) {
            sha.update(plain);
        }
        return true;
    }

    private static byte[] await(Future<byte[]> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("restore interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            throw new IllegalStateException("restore failed: " + e.getCause(), e.getCause());
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
