package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The file a file-backed {@link DiskSink} writes: {@code FILE.partial} until {@link #commit}, which
 * flushes it ({@code fsync}) and renames it to {@code FILE}; {@link #close} without a commit deletes
 * it, so {@code FILE} only ever holds a complete image. Every {@code writebackBytes} {@linkplain
 * #written written}, a background {@code fdatasync} ({@link BackgroundWriteback}) writes the data back
 * while the restore goes on, so the commit's fsync only has the tail left.
 *
 * <p>Positional writes from several threads at once are safe; {@link #commit} and {@link #close}
 * are called once, by the sink's owner, after the writes.
 */
public final class PartialFile implements AutoCloseable {

    private final Path out;
    private final Path partial;
    private final FileChannel channel;
    private final BackgroundWriteback writeback;
    private boolean committed;

    private PartialFile(Path out, Path partial, FileChannel channel, long writebackBytes) {
        this.out = out;
        this.partial = partial;
        this.channel = channel;
        this.writeback = new BackgroundWriteback(partial.toString(), writebackBytes, () -> channel.force(false));
    }

    /**
     * Creates {@code out.partial}, replacing a stale one, {@code size} bytes long (a hole that reads
     * as zeros; 0 for an empty file).
     */
    public static PartialFile create(Path out, long size, long writebackBytes) {
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        try {
            RandomAccessFile f = new RandomAccessFile(partial.toFile(), "rw");
            try {
                f.setLength(0);
                f.setLength(size);
            } catch (IOException e) {
                f.close();
                throw e;
            }
            return new PartialFile(out, partial, f.getChannel(), writebackBytes);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot create " + partial + ": " + e.getMessage()
                            + "; check that the directory exists, is writable and has room",
                    e);
        }
    }

    /**
     * Writes all of {@code buf} at {@code position}; {@code what} names the place for the error
     * (e.g. "at offset 4096"). Does not count towards the writeback: call {@link #written}.
     */
    public void writeAt(ByteBuffer buf, long position, String what) {
        try {
            long p = position;
            while (buf.hasRemaining()) {
                p += channel.write(buf, p);
            }
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot write " + partial + " " + what + ": " + e.getMessage() + "; is the disk full?", e);
        }
    }

    /** Counts {@code bytes} written, starting a background writeback every {@code writebackBytes}. */
    public void written(long bytes) {
        writeback.written(bytes);
    }

    /** Background fsyncs completed so far. */
    public long writebacks() {
        return writeback.flushes();
    }

    /**
     * Waits for the background writeback, runs {@code last} (what must be written after the data,
     * e.g. a format's tables and header), then flushes the file and renames it to {@code out}.
     * A failed writeback fails the commit with its own kind.
     */
    public void commit(Tail last) {
        writeback.finish(true);
        try {
            last.write();
            channel.force(true);
            channel.close();
            Files.move(partial, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            committed = true;
        } catch (IOException e) {
            throw new PermanentException("cannot complete " + out + " from " + partial + ": " + e.getMessage(), e);
        }
    }

    /** Closes the file; deletes it unless committed. */
    @Override
    public void close() {
        writeback.finish(false); // no fsync may race the removal below
        try {
            channel.close();
            if (!committed) {
                Files.deleteIfExists(partial);
            }
        } catch (IOException e) {
            throw new PermanentException("cannot remove the incomplete " + partial + ": " + e.getMessage(), e);
        }
    }

    /** The partial file's name, for messages. */
    public Path partial() {
        return partial;
    }

    /** What a commit writes after the data. */
    @FunctionalInterface
    public interface Tail {
        /** Nothing after the data. */
        Tail NONE = () -> {};

        void write() throws IOException;
    }
}
