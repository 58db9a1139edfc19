package io.tidemark.repository;

import java.nio.ByteBuffer;
import java.nio.file.Path;

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
    private final PartialFile file;

    private RawFileSink(Path out, PartialFile file) {
        this.out = out;
        this.file = file;
    }

    /** Creates {@code out.partial} of {@code size} bytes (a hole), replacing a stale partial file. */
    public static RawFileSink create(Path out, long size) {
        return create(out, size, BackgroundWriteback.DEFAULT_EVERY_BYTES);
    }

    /** {@link #create(Path, long)} with a background fsync every {@code writebackBytes} written. */
    static RawFileSink create(Path out, long size, long writebackBytes) {
        return new RawFileSink(out, PartialFile.create(out, size, writebackBytes));
    }

    @Override
    public void write(long offset, byte[] data, int length) {
        file.writeAt(ByteBuffer.wrap(data, 0, length), offset, "at offset " + offset);
        file.written(length);
    }

    /** Background fsyncs completed so far. */
    long writebacks() {
        return file.writebacks();
    }

    @Override
    public void commit() {
        file.commit(PartialFile.Tail.NONE);
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
        file.close();
    }
}
