package io.tidemark.targets.rados;

import com.ceph.rados.IoCTX;
import com.ceph.rados.Rados;
import com.ceph.rados.exceptions.ErrorCode;
import com.ceph.rados.exceptions.RadosException;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.core.target.TargetKeys;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An {@link ObjectTarget} on a key prefix of a Ceph RADOS pool, through librados (rados-java and a
 * few direct bindings, see {@link Librados}). Key {@code k} is the RADOS object {@code keyPrefix +
 * k} in the pool's default namespace.
 *
 * <p>Contract beyond the port:
 *
 * <ul>
 *   <li>{@link #putIfAbsent} is one RADOS write operation, an exclusive create plus a full write:
 *       atomic and exclusive (of concurrent writers exactly one gets true).
 *   <li>Objects larger than {@link RadosTargetConfig#maxObjectBytes()} are refused with a {@link
 *       PermanentException} before anything is sent (RADOS caps objects at {@code
 *       osd_max_object_size}, 128 MiB by default, and single writes at 90 MiB).
 *   <li>Keys are validated like the other adapters (no empty, absolute, {@code .} or {@code ..}
 *       segments) and must be printable ASCII, as every key of the repository format is.
 *   <li>{@link #list} walks every object of the pool's namespace and keeps those under the prefix:
 *       O(objects in the pool), so give large repositories a pool of their own. A listing that
 *       fails part-way fails as a whole; it never returns a partial list.
 *   <li>Errors: timeouts, refused or reset connections, EAGAIN/EBUSY/EIO are {@link
 *       RetriableException}s; EPERM/EACCES (key or caps), a missing pool, a full pool and anything
 *       else are {@link PermanentException}s naming the pool, the client and what to do. Each
 *       operation waits at most {@link RadosTargetConfig#timeout()} for the cluster. No message
 *       contains the key.
 * </ul>
 *
 * <p>Thread-safe: librados allows concurrent operations on one cluster handle and io context (only
 * changing the context's namespace or snapshot settings is unsafe, and this class never does).
 * Calls share them without locking; {@link #close()} waits for calls in flight, and calls after it
 * fail.
 */
public final class RadosObjectTarget implements ObjectTarget {

    private static final Logger LOG = LoggerFactory.getLogger(RadosObjectTarget.class);

    private static final int ENOENT = ErrorCode.ENOENT.getErrorCode();
    private static final int EEXIST = ErrorCode.EEXIST.getErrorCode();
    private static final Set<ErrorCode> RETRIABLE = Set.of(
            ErrorCode.EAGAIN,
            ErrorCode.EINTR,
            ErrorCode.EBUSY,
            ErrorCode.EIO,
            ErrorCode.ENOMEM,
            ErrorCode.ETIMEDOUT,
            ErrorCode.ETIME,
            ErrorCode.ECONNREFUSED,
            ErrorCode.ECONNRESET,
            ErrorCode.ECONNABORTED,
            ErrorCode.ENOTCONN,
            ErrorCode.ESHUTDOWN,
            ErrorCode.ENETDOWN,
            ErrorCode.ENETUNREACH,
            ErrorCode.EHOSTDOWN,
            ErrorCode.EHOSTUNREACH,
            ErrorCode.ENOBUFS,
            ErrorCode.ECANCELED);
    /** Ceph's own limit on object names ({@code osd_max_object_name_len}). */
    private static final int MAX_OID_LENGTH = 2048;
    /** Rounds of stat-then-read before a read of an object that keeps being replaced gives up. */
    private static final int READ_ATTEMPTS = 4;

    private final RadosTargetConfig config;
    private final Rados cluster;
    private final IoCTX ioctx;
    private final String monHost;
    private final String description;
    private final ReadWriteLock lifecycle = new ReentrantReadWriteLock();
    private boolean closed;

    private RadosObjectTarget(RadosTargetConfig config, Rados cluster, IoCTX ioctx, String monHost) {
        this.config = config;
        this.cluster = cluster;
        this.ioctx = ioctx;
        this.monHost = monHost;
        this.description = config.location() + " (" + monHost + ")";
    }

    /**
     * Connects to the cluster as {@link RadosTargetConfig#clientEntity()} and opens the pool.
     *
     * @throws PermanentException if librados is missing, the configuration or key is wrong, the
     *     user lacks caps, or the pool does not exist
     * @throws RetriableException if the monitors do not answer within the timeout
     */
    public static RadosObjectTarget connect(RadosTargetConfig config) {
        Objects.requireNonNull(config, "config");
        String where = config.monHost() != null ? config.monHost() : String.valueOf(config.confFile());
        Rados cluster = newClusterHandle(config);
        boolean connected = false;
        try {
            String monHost = configure(cluster, config, where);
            try {
                cluster.connect();
            } catch (RadosException e) {
                throw connectFailure(config, monHost, e);
            }
            IoCTX ioctx;
            try {
                ioctx = cluster.ioCtxCreate(config.pool());
            } catch (RadosException e) {
                if (e.getReturnValue() == ENOENT) {
                    throw new PermanentException("RADOS pool '" + config.pool() + "' does not exist at " + monHost
                            + ": create it (ceph osd pool create " + config.pool() + ") or correct the pool name");
                }
                throw connectFailure(config, monHost, e);
            }
            connected = true;
            LOG.debug("connected to {} as {}", config.location(), config.clientEntity());
            return new RadosObjectTarget(config, cluster, ioctx, monHost);
        } finally {
            if (!connected) {
                cluster.shutDown();
            }
        }
    }

    /** The settings this target was made with. */
    public RadosTargetConfig config() {
        return config;
    }

    /** {@code rados://pool/prefix (monitors)}; never holds the key. */
    @Override
    public String describe() {
        return description;
    }

    /** One exclusive-create-and-write operation; false when the object exists (-EEXIST). */
    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        String oid = oid(key);
        Objects.requireNonNull(data, "data");
        if (data.length > config.maxObjectBytes()) {
            throw new PermanentException("cannot store " + config.location() + key + " at " + monHost + ": it is "
                    + data.length + " bytes, above this target's limit of " + config.maxObjectBytes()
                    + " bytes (maxObjectBytes; RADOS itself refuses objects above osd_max_object_size, 128 MiB by"
                    + " default). Tidemark's objects are a few MiB: this is a bug in the caller or a"
                    + " misconfigured chunk size");
        }
        return withIoContext("write", key, io -> {
            Pointer op = Librados.LIB.rados_create_write_op();
            if (op == null) {
                throw new RetriableException("librados could not allocate a write operation for " + description);
            }
            try {
                Librados.LIB.rados_write_op_create(op, Librados.LIBRADOS_CREATE_EXCLUSIVE, null);
                if (data.length > 0) {
                    Librados.LIB.rados_write_op_write_full(op, data, data.length);
                }
                int rc = Librados.LIB.rados_write_op_operate(op, io.getPointer(), oid, null, 0);
                if (rc == EEXIST) {
                    return false;
                }
                if (rc < 0) {
                    throw translate("write", key, rc, null);
                }
                return true;
            } finally {
                Librados.LIB.rados_release_write_op(op);
            }
        });
    }

    /**
     * The object's bytes: a stat for the size, then one read of size + 1 bytes. A read is atomic
     * against writes, so getting at most size bytes means the whole object was read (even one that
     * was replaced in between); more means it grew meanwhile, and the read starts over.
     */
    @Override
    public Optional<byte[]> get(String key) {
        String oid = oid(key);
        return withIoContext("read", key, io -> {
            for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
                long size;
                int read;
                byte[] buffer;
                try {
                    size = io.stat(oid).getSize();
                    if (size > config.maxObjectBytes()) {
                        throw new PermanentException("cannot read " + config.location() + key + " at " + monHost
                                + ": it is " + size + " bytes, above this target's limit of "
                                + config.maxObjectBytes() + " bytes (maxObjectBytes); it was not written by Tidemark");
                    }
                    buffer = new byte[(int) size + 1];
                    read = io.read(oid, buffer.length, 0, buffer);
                } catch (RadosException e) {
                    if (e.getReturnValue() == ENOENT) {
                        return Optional.empty();
                    }
                    throw e;
                }
                if (read <= size) {
                    return Optional.of(Arrays.copyOf(buffer, read));
                }
            }
            throw new RetriableException("RADOS read of " + config.location() + key + " at " + monHost
                    + " failed: the object changed size during " + READ_ATTEMPTS + " reads in a row; retry");
        });
    }

    @Override
    public boolean exists(String key) {
        String oid = oid(key);
        return withIoContext("stat", key, io -> {
            try {
                io.stat(oid);
                return true;
            } catch (RadosException e) {
                if (e.getReturnValue() == ENOENT) {
                    return false;
                }
                throw e;
            }
        });
    }

    @Override
    public List<String> list(String prefix) {
        Objects.requireNonNull(prefix, "prefix");
        if (prefix.startsWith("/")) {
            throw new PermanentException("invalid list prefix '" + prefix + "' for " + description
                    + ": it is absolute; prefixes are relative to the target (a bug in the caller)");
        }
        String wanted = config.keyPrefix() + prefix;
        int strip = config.keyPrefix().length();
        return withIoContext("list", prefix + "*", io -> {
            PointerByReference ctx = new PointerByReference();
            int rc = Librados.LIB.rados_nobjects_list_open(io.getPointer(), ctx);
            if (rc < 0) {
                throw translate("list", prefix + "*", rc, null);
            }
            List<String> keys = new ArrayList<>();
            try {
                PointerByReference entry = new PointerByReference();
                while ((rc = Librados.LIB.rados_nobjects_list_next(ctx.getValue(), entry, null, null)) == 0) {
                    String oid = entry.getValue().getString(0);
                    if (oid.startsWith(wanted)) {
                        keys.add(oid.substring(strip));
                    }
                }
            } finally {
                Librados.LIB.rados_nobjects_list_close(ctx.getValue());
            }
            if (rc != ENOENT) {
                throw translate("list", prefix + "*", rc, null);
            }
            Collections.sort(keys); // RADOS lists in hash order
            return keys;
        });
    }

    @Override
    public void delete(String key) {
        String oid = oid(key);
        withIoContext("delete", key, io -> {
            try {
                io.remove(oid);
            } catch (RadosException e) {
                if (e.getReturnValue() != ENOENT) {
                    throw e;
                }
            }
            return null;
        });
    }

    /** Waits for calls in flight, then releases the io context and the cluster handle. Idempotent. */
    @Override
    public void close() {
        lifecycle.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            cluster.ioCtxDestroy(ioctx);
            cluster.shutDown();
        } finally {
            lifecycle.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return description;
    }

    /** A call on the io context that may fail with librados's error codes. */
    @FunctionalInterface
    private interface IoCall<T> {
        T call(IoCTX io) throws RadosException;
    }

    private <T> T withIoContext(String action, String key, IoCall<T> call) {
        lifecycle.readLock().lock();
        try {
            if (closed) {
                throw new IllegalStateException(description + " is closed");
            }
            return call.call(ioctx);
        } catch (RadosException e) {
            throw translate(action, key, e.getReturnValue(), e);
        } finally {
            lifecycle.readLock().unlock();
        }
    }

    private String oid(String key) {
        TargetKeys.check(key, description);
        for (int i = 0; i < key.length(); i++) {
            char c = key.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                throw invalidKey(key, "RADOS keys must be printable ASCII");
            }
        }
        String oid = config.keyPrefix() + key;
        if (oid.length() > MAX_OID_LENGTH) {
            throw invalidKey(key, "with the prefix it is longer than RADOS's " + MAX_OID_LENGTH + " characters");
        }
        return oid;
    }

    private PermanentException invalidKey(String key, String why) {
        return TargetKeys.invalid(key, description, why);
    }

    /** Turns a librados error code into one of the two kinds callers branch on. */
    private TidemarkException translate(String action, String key, int rc, RadosException cause) {
        String what = "RADOS " + action + " of " + config.location() + key + " at " + monHost + " as "
                + config.clientEntity() + " failed: " + errno(rc);
        return classify(config, what, rc, cause);
    }

    private static TidemarkException classify(RadosTargetConfig config, String what, int rc, RadosException cause) {
        ErrorCode code = ErrorCode.getEnum(rc);
        if (code != null && RETRIABLE.contains(code)) {
            return new RetriableException(redact(config, what + " (transient; retry with backoff)"), cause);
        }
        String hint;
        if (code == ErrorCode.EPERM || code == ErrorCode.EACCES) {
            hint = "Check the key of " + config.clientEntity() + " (keyEnv/keyFile) and its caps: it needs"
                    + " 'mon \"allow r\"' and 'osd \"allow rwx pool=" + config.pool() + "\"' (ceph auth get "
                    + config.clientEntity() + ")";
        } else if (code == ErrorCode.ENOSPC || code == ErrorCode.EDQUOT) {
            hint = "The pool '" + config.pool() + "' is full or over its quota (ceph df; ceph osd pool get-quota "
                    + config.pool() + ")";
        } else if (code == ErrorCode.EFBIG) {
            hint = "The object is above the cluster's osd_max_object_size or osd_max_write_size; lower"
                    + " maxObjectBytes";
        } else if (code == ErrorCode.ENAMETOOLONG) {
            hint = "The key is longer than the cluster's osd_max_object_name_len";
        } else if (rc == 0 && cause != null) {
            hint = "librados call failed in Java: " + cause.getMessage();
        } else {
            hint = "Check the target configuration (monitors, pool, client) and the cluster's health (ceph -s)";
        }
        return new PermanentException(redact(config, what + ". " + hint), cause);
    }

    private static Rados newClusterHandle(RadosTargetConfig config) {
        try {
            return new Rados(config.clientName());
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new PermanentException(
                    "cannot load librados for " + config.location() + ": install librados2"
                            + " (Debian/Ubuntu: apt-get install librados2; deploy/install-deps.sh does it)",
                    e);
        }
    }

    /** Applies the settings to an unconnected handle; returns the monitors, for messages. */
    private static String configure(Rados cluster, RadosTargetConfig config, String where) {
        try {
            if (config.confFile() != null) {
                cluster.confReadFile(config.confFile().toFile());
            }
        } catch (RadosException e) {
            throw new PermanentException(
                    "cannot read the Ceph configuration " + config.confFile() + " for " + config.location() + ": "
                            + errno(e.getReturnValue()),
                    e);
        }
        String seconds = Long.toString(config.timeout().toSeconds());
        try {
            if (config.monHost() != null) {
                cluster.confSet("mon_host", config.monHost());
            }
            cluster.confSet("client_mount_timeout", seconds);
            cluster.confSet("rados_mon_op_timeout", seconds);
            cluster.confSet("rados_osd_op_timeout", seconds);
        } catch (RadosException e) {
            throw new PermanentException(
                    "invalid Ceph client setting for " + config.location() + " (" + where + "): " + e.getMessage(), e);
        }
        if (config.key() != null) {
            try {
                cluster.confSet("key", config.key().strip());
            } catch (RadosException e) {
                // no cause, to keep every trace of the value out of logs (its format was checked)
                throw new PermanentException("librados refused the cephx key of " + config.clientEntity() + " for "
                        + config.location() + ": " + errno(e.getReturnValue()) + ". Check keyEnv/keyFile");
            }
        }
        try {
            String configured = cluster.confGet("mon_host");
            return configured.isBlank() ? where : configured;
        } catch (RadosException e) {
            return where;
        }
    }

    private static TidemarkException connectFailure(RadosTargetConfig config, String monHost, RadosException e) {
        int rc = e.getReturnValue();
        String what = "cannot connect to Ceph at " + monHost + " as " + config.clientEntity() + " for "
                + config.location() + ": " + errno(rc);
        if (rc == ErrorCode.ETIMEDOUT.getErrorCode()) {
            return new RetriableException(
                    redact(
                            config,
                            what + ": no monitor answered within "
                                    + config.timeout().toSeconds()
                                    + " s; check monHost and that the monitors are reachable (retry with backoff)"),
                    e);
        }
        return classify(config, what, rc, e);
    }

    private static String errno(int rc) {
        ErrorCode code = ErrorCode.getEnum(rc);
        return code == null ? "error " + rc : code.name() + " (" + code.getErrorMessage() + ", " + rc + ")";
    }

    /** Defence in depth: no message leaves this class with the key in it. */
    private static String redact(RadosTargetConfig config, String message) {
        String key = config.key();
        return key == null || key.length() < 8 ? message : message.replace(key, "***");
    }
}
