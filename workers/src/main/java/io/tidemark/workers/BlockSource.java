package io.tidemark.workers;

import io.tidemark.workers.nbd.Extent;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A read-only view of one captured disk: its size, its extent maps (allocation, dirty bitmap) and
 * its bytes. {@link NbdBlockSource} reads a QEMU export; tests use an in-memory one.
 */
public interface BlockSource extends AutoCloseable {

    /** The allocation map context; see {@link Extent#HOLE} and {@link Extent#ZERO}. */
    String ALLOCATION = "base:allocation";

    long size();

    /** The extents of {@code context} covering exactly {@code [offset, offset+length)}. */
    List<Extent> extents(String context, long offset, long length);

    /** Reads {@code length} bytes at {@code offset}; several reads may be in flight. */
    CompletableFuture<byte[]> read(long offset, int length);

    /**
     * Reads {@code length} bytes at {@code offset} into {@code into[0, length)}, a buffer the caller
     * reuses; it must not be touched until the future completes. The default copies what {@link
     * #read} returns; a source that can read in place (NBD) avoids the copy and the allocation.
     */
    default CompletableFuture<Void> readInto(long offset, int length, byte[] into) {
        return read(offset, length).thenAccept(data -> System.arraycopy(data, 0, into, 0, length));
    }

    @Override
    void close();
}
