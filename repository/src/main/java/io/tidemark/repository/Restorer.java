package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Rebuilds a disk image from one restore point. Every restore point is logically full, so the
 * cost does not depend on how many incrementals precede it. Chunks are fetched in parallel and
 * verified against their digests; zero chunks become holes. The image appears under its final
 * name only when it is complete.
 */
public final class Restorer {

    /** Receives progress: bytes of the disk done so far, of {@code total}. */
    @FunctionalInterface
    public interface Progress {
        void update(long done, long total);

        Progress NONE = (done, total) -> {};
    }

    /** What a restore produced. */
    public record Result(Path image, long sizeBytes, long bytesFetched, String sha256) {}

    private final Repository repository;
    private final int parallelism;

    public Restorer(Repository repository, int parallelism) {
        this.repository = repository;
        this.parallelism = Math.max(1, parallelism);
    }

    /** Writes disk {@code diskName} of {@code manifest} to {@code out} as a raw (sparse) image. */
    public Result restoreDisk(Manifest manifest, String diskName, Path out, Progress progress) {
        DiskEntry disk = manifest.disk(diskName)
                .orElseThrow(() -> new PermanentException("restore point " + manifest.id() + " of " + manifest.vm()
                        + " has no disk '" + diskName + "'; it has "
                        + manifest.disks().stream().map(DiskEntry::name).toList()));
        IndexRoot root = repository.root(Digest.fromHex(disk.index()));
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        AtomicLong done = new AtomicLong();
        AtomicLong fetched = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, r -> {
            Thread t = new Thread(r, "restore-fetch");
            t.setDaemon(true);
            return t;
        });
        try (FileChannel ch = FileChannel.open(
                partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.truncate(0);
            List<Future<?>> inFlight = new ArrayList<>();
            long chunkNo = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repository.page(root.pages().get(p));
                for (int i = 0; i < page.size(); i++, chunkNo++) {
                    long offset = chunkNo * root.chunkSize();
                    int length = (int) Math.min(root.chunkSize(), root.diskSize() - offset);
                    Digest d = page.get(i);
                    if (d.isZero()) {
                        progress.update(done.addAndGet(length), root.diskSize());
                        continue;
                    }
                    inFlight.add(pool.submit(() -> {
                        byte[] plain = repository.chunk(d, length);
                        if (plain.length != length) {
                            throw new PermanentException(
                                    "chunk " + d + " has " + plain.length + " bytes where the index expects " + length);
                        }
                        writeFully(ch, ByteBuffer.wrap(plain), offset);
                        fetched.addAndGet(length);
                        progress.update(done.addAndGet(length), root.diskSize());
                        return null;
                    }));
                    if (inFlight.size() >= parallelism * 4) {
                        await(inFlight.remove(0));
                    }
                }
            }
            for (Future<?> f : inFlight) {
                await(f);
            }
            if (ch.size() < root.diskSize()) {
                // extend to the full size; trailing zero chunks stay holes
                writeFully(ch, ByteBuffer.allocate(1), root.diskSize() - 1);
            }
            ch.force(true);
        } catch (IOException e) {
            throw new PermanentException("cannot write " + partial + ": " + e.getMessage(), e);
        } finally {
            pool.shutdownNow();
        }
        String sha = sha256(partial);
        try {
            Files.move(partial, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new PermanentException("cannot move " + partial + " to " + out + ": " + e.getMessage(), e);
        }
        return new Result(out, root.diskSize(), fetched.get(), sha);
    }

    private static void await(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("restore interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            if (e.getCause() instanceof UncheckedIOException io) {
                throw new PermanentException("restore failed: " + io.getMessage(), io);
            }
            throw new IllegalStateException(e.getCause());
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf, long position) {
        try {
            long pos = position;
            while (buf.hasRemaining()) {
                pos += ch.write(buf, pos);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
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
        return java.util.HexFormat.of().formatHex(md.digest());
    }
}
