package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.concurrent.DaemonThreads;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A raw image file. It is written as {@code FILE.partial}, created sparse at the full size (so chunks
 * never written are holes that read as zeros), and renamed to {@code FILE} on {@link #commit}; a
 * failed restore deletes the partial file, so {@code FILE} only ever holds a complete image.
 *
 * <p>Writeback runs while the restore does: each time {@link #WRITEBACK_BYTES} more have been
 * written, one background thread fsyncs what is there ({@code fdatasync}), so the disk writes
 * overlap the fetching and verifying instead of all waiting for {@link #commit}'s fsync at the end
 * (which then only flushes the tail), and the dirty pages a restore holds in the page cache stay
 * bounded. At most one such fsync runs at a time; its failure fails the commit.
 */
public final class RawFileSink implements DiskSink {

    /** Written bytes after which a background fsync starts: 64 MiB. */
    static final long WRITEBACK_BYTES = 64L << 20;

    private final Path out;
    private final Path partial;
    private final FileChannel channel;
    private final long writebackBytes;
    private final AtomicLong unsynced = new AtomicLong();
    private final AtomicLong writebacks = new AtomicLong();
    private final AtomicReference<IOException> writebackFailure = new AtomicReference<>();
    private final Object writebackLock = new Object();
    private ExecutorService writeback; // created at the first background fsync; guarded by writebackLock
    private Future<?> running; // guarded by writebackLock
    private boolean stopped; // commit or close began: no more background fsyncs; guarded by writebackLock
    private boolean committed;

    private RawFileSink(Path out, Path partial, FileChannel channel, long writebackBytes) {
        this.out = out;
        this.partial = partial;
        this.channel = channel;
        this.writebackBytes = writebackBytes;
    }

    /** Creates {@code out.partial} of {@code size} bytes (a hole), replacing a stale partial file. */
    public static RawFileSink create(Path out, long size) {
        return create(out, size, WRITEBACK_BYTES);
    }

    /** {@link #create(Path, long)} with a background fsync every {@code writebackBytes} written. */
    static RawFileSink create(Path out, long size, long writebackBytes) {
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        try {
            try (RandomAccessFile f = new RandomAccessFile(partial.toFile(), "rw")) {
                f.setLength(0);
                f.setLength(size);
            }
            return new RawFileSink(out, partial, FileChannel.open(partial, StandardOpenOption.WRITE), writebackBytes);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot create " + partial + ": " + e.getMessage()
                            + "; check that the directory exists, is writable and has room",
                    e);
        }
    }

    @Override
    public void write(long offset, byte[] data, int length) {
        ByteBuffer buf = ByteBuffer.wrap(data, 0, length);
        try {
            long pos = offset;
            while (buf.hasRemaining()) {
                pos += channel.write(buf, pos);
            }
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot write " + partial + " at offset " + offset + ": " + e.getMessage() + "; is the disk full?",
                    e);
        }
        if (unsynced.addAndGet(length) >= writebackBytes) {
            startWriteback();
        }
    }

    /** Starts a background fsync of what is written so far, unless one is running. */
    private void startWriteback() {
        synchronized (writebackLock) {
            if (stopped || (running != null && !running.isDone()) || unsynced.get() < writebackBytes) {
                return;
            }
            unsynced.set(0);
            if (writeback == null) {
                writeback = Executors.newSingleThreadExecutor(DaemonThreads.named("restore-writeback"));
            }
            running = writeback.submit(() -> {
                try {
                    channel.force(false);
                    writebacks.incrementAndGet();
                } catch (IOException e) { // kept for commit: a later fsync may not report it again
                    writebackFailure.compareAndSet(null, e);
                }
            });
        }
    }

    /** Background fsyncs completed so far. */
    long writebacks() {
        return writebacks.get();
    }

    /**
     * Stops background fsyncs and waits for the one running, if any; a background fsync's failure
     * is thrown only if {@code rethrow} (a commit), not when an abandoned image is being removed.
     */
    private void awaitWriteback(boolean rethrow) {
        Future<?> f;
        synchronized (writebackLock) {
            stopped = true;
            f = running;
            if (writeback != null) {
                writeback.shutdown();
            }
        }
        if (f != null) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (rethrow) {
                    throw new PermanentException("interrupted while flushing " + partial, e);
                }
            } catch (ExecutionException e) {
                throw new IllegalStateException("background fsync of " + partial + " failed", e.getCause());
            }
        }
        IOException failure = writebackFailure.get();
        if (rethrow && failure != null) {
            throw new PermanentException(
                    "cannot flush " + partial + " to disk: " + failure.getMessage() + "; is the disk full or failing?",
                    failure);
        }
    }

    @Override
    public void commit() {
        awaitWriteback(true);
        try {
            channel.force(true);
            channel.close();
            Files.move(partial, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            committed = true;
        } catch (IOException e) {
            throw new PermanentException("cannot complete " + out + " from " + partial + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return out.toString();
    }

    @Override
    public String format() {
        return "raw";
    }

    @Override
    public void close() {
        awaitWriteback(false); // no fsync may race the removal below
        try {
            channel.close();
            if (!committed) {
                Files.deleteIfExists(partial);
            }
        } catch (IOException e) {
            throw new PermanentException("cannot remove the incomplete " + partial + ": " + e.getMessage(), e);
        }
    }
}
