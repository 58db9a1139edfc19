package io.tidemark.repository;

/**
 * Where a restore writes one disk image: a raw file, a qcow2 file, a Ceph RBD image. The {@link
 * Restorer} writes only the non-zero chunks; a sink must read as zeros wherever nothing was written,
 * so a new image stays sparse.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #write} may be called from several threads at once, for disjoint ranges, in any order.
 *       It returns only once the sink no longer needs {@code data}: the caller reuses the buffer for
 *       the next chunk.
 *   <li>Durability is batched: {@link #write} need not reach stable storage; {@link #commit} makes
 *       it so, once for the whole image. A sink may also flush in the background meanwhile ({@link
 *       BackgroundWriteback}) so that the commit's flush has less left to do.
 *   <li>{@link #commit} makes every write durable and the image complete under its final name; it is
 *       called once, after the last write.
 *   <li>{@link #close} without a successful {@link #commit} removes what the sink created (or, where
 *       it cannot, says in the log what to remove); after a commit it only releases resources.
 *   <li>Failures are {@link io.tidemark.core.PermanentException}s or {@link
 *       io.tidemark.core.RetriableException}s naming the image.
 * </ul>
 */
public interface DiskSink extends AutoCloseable {

    /** Writes {@code data[0, length)} at {@code offset} of the image. */
    void write(long offset, byte[] data, int length);

    /** Flushes and publishes the complete image. */
    void commit();

    /** The image as messages and {@code --json} name it: a path or {@code rbd:pool/image}. */
    String describe();

    /** The image format: {@code raw}, {@code qcow2} or {@code rbd}. */
    String format();

    @Override
    void close();
}
