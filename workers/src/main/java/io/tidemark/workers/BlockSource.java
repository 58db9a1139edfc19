package io.tidemark.workers;

import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A read-only view of one captured disk: its size, its extent maps (allocation, dirty bitmap) and
 * its bytes. {@code NbdBlockSource} reads a QEMU export; tests use an in-memory one.
 */
public interface BlockSource extends AutoCloseable {

    /** The allocation map context: bit 0 = hole, bit 1 = reads as zeros. */
    String ALLOCATION = "base:allocation";

    int FLAG_HOLE = 1;
    int FLAG_ZERO = 2;
    /** In a dirty-bitmap context, flag bit 0 means dirty. */
    int FLAG_DIRTY = 1;

    /** One extent of a map: {@code [offset, offset+length)} with the context's flags. */
    record Extent(long offset, long length, int flags) {}

    long size();

    /** The extents of {@code context} covering exactly {@code [offset, offset+length)}. */
    List<Extent> extents(String context, long offset, long length);

    /** Reads {@code length} bytes at {@code offset}; several reads may be in flight. */
    CompletableFuture<byte[]> read(long offset, int length);

    @Override
    void close();
}
