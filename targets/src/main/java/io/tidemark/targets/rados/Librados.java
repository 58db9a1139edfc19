package io.tidemark.targets.rados;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;

/**
 * The librados C calls that rados-java 0.6.0 lacks or gets wrong for us, bound through JNA (which
 * rados-java's own API already exposes: {@code IoCTX.getPointer()} is a JNA pointer). Both bind the
 * same {@code librados.so.2}, so rados-java's cluster and io-context handles are valid here.
 *
 * <ul>
 *   <li><b>Write operations.</b> rados-java binds only read operations ({@code ReadOp}); it has no
 *       {@code rados_write_op_*}, no lock calls and no compare-and-write. A put-if-absent must be
 *       one atomic, exclusive step, and a compound write operation is the librados primitive for
 *       it: {@code rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE)} followed by {@code
 *       rados_write_op_write_full} runs as one transaction on the primary OSD, which fails it with
 *       {@code -EEXIST} if the object exists. Readers see no object or all of it. What rados-java
 *       offers instead does not do: {@code writeFull} overwrites; a {@code stat} then {@code
 *       write} races; writing a temporary object and renaming it is impossible (RADOS has no
 *       rename, and Pacific's librados no longer has {@code rados_clone_range}); advisory locks ({@code
 *       rados_lock_exclusive}, unbound anyway) create the object as an empty one while the lock is
 *       held, so readers would see a truncated object.
 *   <li><b>Listing.</b> rados-java's {@code IoCTX.listObjects()} stops at the first non-zero
 *       result of {@code rados_nobjects_list_next} and so returns a silently truncated list when
 *       an OSD times out. A truncated list of manifests would make garbage collection sweep live
 *       chunks, so this binding tells the end of the listing ({@code -ENOENT}) from an error.
 * </ul>
 *
 * <p>All calls are thread-safe in librados as long as each operation or list handle is used by one
 * thread, which {@link RadosObjectTarget} guarantees. Keys are ASCII (checked by the target), so
 * JNA's platform-charset conversion of {@code String} arguments cannot change them.
 */
interface Librados extends Library {

    /** Loaded like rados-java does: {@code librados.so}, or else {@code librados.so.2} from librados2. */
    Librados LIB = Native.load("rados", Librados.class);

    /** {@code rados_write_op_create(op, exclusive, ...)}: fail with -EEXIST if the object exists. */
    int LIBRADOS_CREATE_EXCLUSIVE = 1;

    /** {@code rados_write_op_t rados_create_write_op(void)}. */
    Pointer rados_create_write_op();

    /** {@code void rados_release_write_op(rados_write_op_t)}. */
    void rados_release_write_op(Pointer writeOp);

    /** {@code void rados_write_op_create(rados_write_op_t, int exclusive, const char *category)}. */
    void rados_write_op_create(Pointer writeOp, int exclusive, String category);

    /**
     * {@code void rados_write_op_write_full(rados_write_op_t, const char *buffer, size_t len)}; the
     * bytes are copied into the operation at once. {@code size_t} is a 64-bit {@code long} on the
     * LP64 platforms Ceph ships for.
     */
    void rados_write_op_write_full(Pointer writeOp, byte[] buffer, long len);

    /**
     * {@code int rados_write_op_operate(rados_write_op_t, rados_ioctx_t, const char *oid, time_t
     * *mtime, int flags)}: runs the operation synchronously; 0 or a negative errno.
     */
    int rados_write_op_operate(Pointer writeOp, Pointer ioctx, String oid, Pointer mtime, int flags);

    /** {@code int rados_nobjects_list_open(rados_ioctx_t, rados_list_ctx_t *ctx)}. */
    int rados_nobjects_list_open(Pointer ioctx, PointerByReference ctx);

    /**
     * {@code int rados_nobjects_list_next(rados_list_ctx_t, const char **entry, const char **key,
     * const char **nspace)}: 0, -ENOENT at the end, or another negative errno.
     */
    int rados_nobjects_list_next(Pointer ctx, PointerByReference entry, Pointer key, Pointer nspace);

    /** {@code void rados_nobjects_list_close(rados_list_ctx_t)}. */
    void rados_nobjects_list_close(Pointer ctx);
}
