package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * A raw image file. It is written as {@code FILE.partial}, created sparse at the full size (so chunks
 * never written are holes that read as zeros), and renamed to {@code FILE} on {@link #commit}; a
 * failed restore deletes the partial file, so {@code FILE} only ever holds a complete image.
 *
 * <p>Writeback runs while the restore does ({@link BackgroundWriteback}): every {@link
 * BackgroundWriteback#DEFAULT_EVERY_BYTES} written, a background {@code fdatasync}, so that the
 * commit's fsync only has the tail left.
 */
public final class RawFileSink implements DiskSink {

    private final Path out;
    private final Path partial;
    private final FileChannel channel;
    private final BackgroundWriteback writeback;
    private boolean committed;

    private RawFileSink(Path out, Path partial, FileChannel channel, long writebackBytes) {
        this.out = out;
        this.partial = partial;
        this.channel = channel;
        this.writeback = new BackgroundWriteback(partial.toString(), writebackBytes, () -> channel.force(false));
    }

    /** Creates {@code out.partial} of {@code size} bytes (a hole), replacing a stale partial file. */
    public static RawFileSink create(Path out, long size) {
        return create(out, size, BackgroundWriteback.DEFAULT_EVERY_BYTES);
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
        writeback.written(length);
    }

    /** Background fsyncs completed so far. */
    long writebacks() {
        return writeback.flushes();
    }

    @Override
    public void commit() {
        writeback.finish(true);
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
}
