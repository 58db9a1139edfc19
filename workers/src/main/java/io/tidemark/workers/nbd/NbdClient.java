package io.tidemark.workers.nbd;

import static io.tidemark.workers.nbd.NbdProtocol.*;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.hypervisor.DiskExport;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD client for one export, over a Unix socket (the protocol as QEMU 7.2 speaks it: fixed
 * newstyle handshake, structured replies, meta contexts): reads and block status for captures, writes
 * and flush for restores into an image that {@code qemu-nbd} exports.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #connect} negotiates structured replies, the requested meta contexts and the export;
 *       a missing export or context is a {@link PermanentException}, an unreachable socket a {@link
 *       RetriableException}.
 *   <li>{@link #readAsync} may be called from several threads; up to {@value #MAX_IN_FLIGHT}
 *       requests are in flight on the connection (further calls block until one completes). Holes
 *       read as zeros. Futures complete on the connection's reader thread: do heavy work, and
 *       issue further requests, in an {@code ...Async} stage, never in a plain callback (a callback
 *       that waits for a free slot would stall the only thread that frees them).
 *   <li>{@link #writeAsync} and {@link #flush} behave like {@link #readAsync} (same slots, same
 *       errors); writing to a read-only export is a {@link PermanentException}. A write is durable
 *       only after a later {@link #flush} completed.
 *   <li>{@link #blockStatus} returns extents that cover exactly the requested range, in order,
 *       adjacent extents with equal flags merged.
 *   <li>Nothing waits for ever: the connect and handshake have a deadline, and a server that sends
 *       nothing for longer than the timeout while requests are pending (QEMU stopped or hung) fails
 *       them all with a {@link RetriableException} that says so, and closes the connection. {@link
 *       #close()} from another thread fails every pending request at once.
 *   <li>An error reported by the server fails only that request, with a {@link PermanentException}
 *       naming the export, offset and length. A lost connection fails every pending and later
 *       request with a {@link RetriableException}; open a new client to retry.
 * </ul>
 */
public final class NbdClient implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(NbdClient.class);

    /** The allocation map every NBD server offers. */
    public static final String BASE_ALLOCATION = "base:allocation";

    /** The largest request sent on the wire; longer reads and status queries are split. */
    public static final int MAX_REQUEST_LENGTH = 32 << 20;

    /**
     * Timeout of {@link #connect(Path, String, List)}: for the connect and handshake, and for the
     * server's silence while requests are pending.
     */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    static final int MAX_IN_FLIGHT = 64;

    private final Path socket;
    private final String exportName;
    private final SocketChannel channel;
    private final long size;
    private final int transmissionFlags;
    private final int maxRequest;
    private final Map<String, Integer> contexts;
    private final Object writeLock = new Object();
    private final AtomicLong handles = new AtomicLong();
    private final Map<Long, Request> inFlight = new ConcurrentHashMap<>();
    private final Semaphore slots = new Semaphore(MAX_IN_FLIGHT);
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Thread reader;
    private volatile TidemarkException failure;
    private final long timeoutNanos;
    private volatile long lastProgress = System.nanoTime();
    private volatile ScheduledFuture<?> watchdog;

    /** What a server that does not answer in time may be, and what to do. */
    static final String STOPPED = "QEMU may be stopped (SIGSTOP) or hung; check the VM's QEMU process, the job may"
            + " be retried with a new capture";

    /** One thread for every client's stall check. */
    private static final ScheduledExecutorService WATCHDOG =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("nbd-watchdog"));

    private NbdClient(Path socket, String exportName, SocketChannel channel, NbdHandshake h, Duration timeout) {
        this.socket = socket;
        this.timeoutNanos = timeout.toNanos();
        this.exportName = exportName;
        this.channel = channel;
        this.size = h.size;
        this.transmissionFlags = h.transmissionFlags;
        this.maxRequest = h.maxBlock > 0 ? Math.min(MAX_REQUEST_LENGTH, h.maxBlock) : MAX_REQUEST_LENGTH;
        this.contexts = Collections.unmodifiableMap(h.contexts);
        this.reader = new Thread(this::readLoop, "nbd-reader " + exportName);
        this.reader.setDaemon(true);
    }

    /**
     * Opens the export of one captured disk with {@code base:allocation} and, for an incremental
     * capture, its dirty-bitmap context; a snapshot of the changes only with its dirty-bitmap
     * context alone (QEMU answers the block status of every selected context, and refuses the
     * allocation of what it did not keep).
     */
    public static NbdClient connect(DiskExport export) {
        List<String> wanted = new ArrayList<>();
        if (!export.snapshotOfChangesOnly()) {
            wanted.add(BASE_ALLOCATION);
        }
        export.dirtyBitmapContext().ifPresent(wanted::add);
        return connect(export.nbdSocket(), export.exportName(), wanted, DEFAULT_TIMEOUT);
    }

    /** Opens an export with {@link #DEFAULT_TIMEOUT}; see {@link #connect(Path, String, List, Duration)}. */
    public static NbdClient connect(Path socket, String exportName, List<String> metaContexts) {
        return connect(socket, exportName, metaContexts, DEFAULT_TIMEOUT);
    }

    /**
     * Connects and negotiates.
     *
     * @param metaContexts the meta contexts to select (for example {@code base:allocation} and
     *     {@code qemu:dirty-bitmap:tm-1}); each must be offered by the export
     * @param timeout for the connect and the whole handshake; later, how long the server may send
     *     nothing while requests are pending (ten times that while a flush is pending) before every
     *     pending and later request fails with a {@link RetriableException} and the connection is
     *     closed
     */
    public static NbdClient connect(Path socket, String exportName, List<String> metaContexts, Duration timeout) {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException e) {
            throw new RetriableException("cannot open a Unix socket channel for " + socket + ": " + e, e);
        }
        // whoever flips this first wins: the handshake (done) or the watchdog (closes the channel). It
        // covers connect() as well: a QEMU that accepts nothing leaves it blocked once the backlog is full
        AtomicBoolean settled = new AtomicBoolean();
        CompletableFuture.delayedExecutor(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .execute(() -> {
                    if (settled.compareAndSet(false, true)) {
                        closeQuietly(channel);
                    }
                });
        try {
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (AsynchronousCloseException e) {
            closeQuietly(channel);
            throw new RetriableException(
                    "the NBD socket " + socket + " did not accept a connection within " + timeout + ": " + STOPPED, e);
        } catch (IOException e) {
            settled.set(true);
            closeQuietly(channel);
            throw new RetriableException(
                    "cannot connect to the NBD socket " + socket + " (" + e + "); is the capture still open?", e);
        }
        try {
            NbdHandshake h = new NbdHandshake(socket, exportName, channel).run(metaContexts);
            if (!settled.compareAndSet(false, true)) {
                throw new IOException("the handshake took longer than " + timeout);
            }
            NbdClient client = new NbdClient(socket, exportName, channel, h, timeout);
            client.reader.start();
            client.watch();
            log.debug("NBD export {} on {}: {} bytes, contexts {}", exportName, socket, h.size, h.contexts);
            return client;
        } catch (IOException e) {
            closeQuietly(channel);
            throw new RetriableException(
                    "NBD handshake for export '" + exportName + "' on " + socket + " failed or took longer than "
                            + timeout + ": " + e + "; if it timed out, " + STOPPED,
                    e);
        } catch (TidemarkException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    /** Fails everything in flight when the server has sent nothing for longer than the timeout. */
    private void watch() {
        long period = Math.max(20, Math.min(1000, timeoutNanos / 4_000_000));
        watchdog = WATCHDOG.scheduleWithFixedDelay(this::checkStall, period, period, TimeUnit.MILLISECONDS);
    }

    private void checkStall() {
        if (inFlight.isEmpty() || failure != null) {
            return;
        }
        long silent = System.nanoTime() - lastProgress;
        // a flush may take long on a slow disk (restores into qemu-nbd): it gets ten times the timeout
        boolean flushing =
                inFlight.values().stream().anyMatch(r -> r instanceof CommandRequest c && c.type == CMD_FLUSH);
        if (silent > (flushing ? 10 * timeoutNanos : timeoutNanos)) {
            failAll(new RetriableException("NBD export '" + exportName + "' on " + socket + " answered nothing for "
                    + Duration.ofNanos(silent).toMillis() + " ms with " + inFlight.size()
                    + " request(s) pending (timeout " + Duration.ofNanos(timeoutNanos) + "): " + STOPPED
                    + "; the connection was closed"));
            closeQuietly(channel);
            watchdog.cancel(false);
        }
    }

    /** The export's size in bytes. */
    public long size() {
        return size;
    }

    public String exportName() {
        return exportName;
    }

    public Path socket() {
        return socket;
    }

    /** The meta contexts the server selected, by name, with the ids it assigned. */
    public Map<String, Integer> metaContexts() {
        return contexts;
    }

    /** The longest single request this client sends (32 MiB, or less if the server says so). */
    public int maxRequestLength() {
        return maxRequest;
    }

    /**
     * The map of {@code context} over {@code [offset, offset + length)}, asking the server as often
     * as needed (it may answer for less than was asked).
     *
     * @throws IllegalArgumentException when the range is outside the export or the context was not
     *     negotiated in {@link #connect}
     */
    public List<Extent> blockStatus(String context, long offset, long length) {
        Integer id = contexts.get(context);
        if (id == null) {
            throw new IllegalArgumentException("meta context '" + context + "' was not negotiated on export '"
                    + exportName + "' (" + socket + "); negotiated: " + contexts.keySet());
        }
        checkRange(offset, length);
        List<Extent> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            int ask = (int) Math.min(end - pos, maxRequest);
            StatusRequest r = new StatusRequest(pos, ask, id);
            submit(r, CMD_BLOCK_STATUS);
            List<Extent> got = await(r.done);
            long next = pos;
            for (Extent e : got) {
                if (e.offset() != next) {
                    throw protocolError("block status extents are not contiguous at " + next);
                }
                long clippedEnd = Math.min(e.end(), end);
                if (clippedEnd > next) {
                    append(out, new Extent(next, clippedEnd - next, e.flags()));
                }
                next = e.end();
            }
            if (next <= pos) {
                throw protocolError("empty block status reply for offset " + pos + " length " + ask);
            }
            pos = next;
        }
        return out;
    }

    private static void append(List<Extent> out, Extent e) {
        if (!out.isEmpty()) {
            Extent last = out.get(out.size() - 1);
            if (last.flags() == e.flags() && last.end() == e.offset()) {
                out.set(out.size() - 1, new Extent(last.offset(), last.length() + e.length(), last.flags()));
                return;
            }
        }
        out.add(e);
    }

    /**
     * Starts reading {@code [offset, offset + length)}; lengths above {@link #maxRequestLength()}
     * are split into several requests. Blocks while {@value #MAX_IN_FLIGHT} requests are in flight.
     * The future fails with a {@link PermanentException} for a server error, a {@link
     * RetriableException} for a lost connection.
     */
    public CompletableFuture<byte[]> readAsync(long offset, int length) {
        byte[] buf = new byte[length];
        return readAsync(offset, length, buf, 0).thenApply(v -> buf);
    }

    /**
     * As {@link #readAsync(long, int)}, into {@code buf[bufOffset, bufOffset + length)} (a buffer
     * the caller reuses: holes are zero-filled, nothing else is written). The caller must not touch
     * that range until the future completes.
     */
    public CompletableFuture<Void> readAsync(long offset, int length, byte[] buf, int bufOffset) {
        checkRange(offset, length);
        if (bufOffset < 0 || length > buf.length - bufOffset) {
            throw new IllegalArgumentException("a read of " + length + " bytes does not fit at " + bufOffset
                    + " in a buffer of " + buf.length + " bytes");
        }
        if (length == 0) {
            return CompletableFuture.completedFuture(null);
        }
        List<CompletableFuture<Void>> parts = new ArrayList<>();
        for (int done = 0; done < length; ) {
            int n = Math.min(length - done, maxRequest);
            ReadRequest r = new ReadRequest(offset + done, n, buf, bufOffset + done);
            submit(r, CMD_READ);
            parts.add(r.done);
            done += n;
        }
        return parts.size() == 1 ? parts.get(0) : CompletableFuture.allOf(parts.toArray(new CompletableFuture<?>[0]));
    }

    /** Whether the server accepts writes on this export. */
    public boolean writable() {
        return (transmissionFlags & TFLAG_READ_ONLY) == 0;
    }

    /**
     * Starts writing {@code data[0, length)} at {@code offset}; lengths above {@link
     * #maxRequestLength()} are split. Blocks while {@value #MAX_IN_FLIGHT} requests are in flight.
     * The caller must not change {@code data} until the future completes.
     */
    public CompletableFuture<Void> writeAsync(long offset, byte[] data, int length) {
        checkRange(offset, length);
        if (!writable()) {
            throw new PermanentException("NBD export '" + exportName + "' on " + socket + " is read-only");
        }
        List<CompletableFuture<Void>> parts = new ArrayList<>();
        for (int done = 0; done < length; ) {
            int n = Math.min(length - done, maxRequest);
            CommandRequest r = new CommandRequest(CMD_WRITE, offset + done, n, data, done);
            submit(r, CMD_WRITE);
            parts.add(r.done);
            done += n;
        }
        return parts.size() == 1 ? parts.get(0) : CompletableFuture.allOf(parts.toArray(new CompletableFuture<?>[0]));
    }

    /** Writes {@code data[0, length)} at {@code offset} and waits until the server has it. */
    public void write(long offset, byte[] data, int length) {
        await(writeAsync(offset, data, length));
    }

    /**
     * Asks the server to make every completed write durable, and waits. A server that does not
     * support flush (it writes through) makes this a no-op.
     */
    public void flush() {
        if ((transmissionFlags & TFLAG_SEND_FLUSH) == 0) {
            return;
        }
        CommandRequest r = new CommandRequest(CMD_FLUSH, 0, 0, null, 0);
        submit(r, CMD_FLUSH);
        await(r.done);
    }

    /** Reads {@code [offset, offset + length)} and waits for the bytes. */
    public byte[] read(long offset, int length) {
        return await(readAsync(offset, length));
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > size) {
            throw new IllegalArgumentException("range offset=" + offset + " length=" + length + " is outside export '"
                    + exportName + "' of " + size + " bytes");
        }
    }

    private <T> T await(CompletableFuture<T> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            throw rethrown(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while reading NBD export '" + exportName + "' on " + socket, e);
        }
    }

    private static TidemarkException rethrown(Throwable cause) {
        Throwable c = cause instanceof CompletionException && cause.getCause() != null ? cause.getCause() : cause;
        if (c instanceof ServerError e) { // keeps its type: callers tell a refused request from a lost server
            return new ServerError(e.error, e.getMessage(), e);
        }
        if (c instanceof PermanentException p) {
            return new PermanentException(p.getMessage(), p);
        }
        if (c instanceof TidemarkException t) {
            return new RetriableException(t.getMessage(), t);
        }
        return new RetriableException("NBD read failed: " + c, c);
    }

    private void submit(Request r, int type) {
        ensureOpen();
        try {
            slots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while waiting to send an NBD request to " + socket, e);
        }
        long handle = handles.incrementAndGet();
        lastProgress = System.nanoTime();
        inFlight.put(handle, r);
        if (failure != null) {
            complete(handle, failure);
            return;
        }
        ByteBuffer b = ByteBuffer.allocate(28);
        b.putInt(REQUEST_MAGIC).putShort((short) 0).putShort((short) type).putLong(handle);
        b.putLong(r.offset).putInt(r.length).flip();
        try {
            synchronized (writeLock) {
                writeAll(channel, b);
                if (r instanceof CommandRequest c && c.data != null) {
                    writeAll(channel, ByteBuffer.wrap(c.data, c.dataOffset, c.length));
                }
            }
        } catch (IOException e) {
            failAll(lost(e));
        }
    }

    private void ensureOpen() {
        TidemarkException f = failure;
        if (f != null) {
            throw rethrown(f);
        }
    }

    private RetriableException lost(Exception e) {
        TidemarkException f = failure;
        if (f instanceof RetriableException r) {
            return r; // the watchdog closed the channel: keep its reason
        }
        return closed.get()
                ? new RetriableException("the NBD client for export '" + exportName + "' on " + socket + " is closed")
                : new RetriableException(
                        "lost the NBD connection to export '" + exportName + "' on " + socket + " (" + e
                                + "); the capture may have been closed. Retry with a new capture",
                        e);
    }

    private PermanentException protocolError(String what) {
        return new PermanentException("NBD protocol violation by the server of export '" + exportName + "' on " + socket
                + ": " + what + "; report this with the QEMU version");
    }

    private void readLoop() {
        ByteBuffer magic = ByteBuffer.allocate(4);
        ByteBuffer structured = ByteBuffer.allocate(16);
        ByteBuffer simple = ByteBuffer.allocate(12);
        try {
            while (true) {
                readFully(channel, magic.clear());
                lastProgress = System.nanoTime();
                int m = magic.getInt(0);
                if (m == STRUCTURED_REPLY_MAGIC) {
                    readFully(channel, structured.clear());
                    structured.flip();
                    int flags = structured.getShort() & 0xffff;
                    int type = structured.getShort() & 0xffff;
                    long handle = structured.getLong();
                    long length = structured.getInt() & 0xffffffffL;
                    Request r = inFlight.get(handle);
                    if (r == null) {
                        throw new ProtocolViolation("reply chunk for unknown handle " + handle);
                    }
                    onChunk(r, type, length);
                    if ((flags & REPLY_FLAG_DONE) != 0) {
                        complete(handle, null);
                    }
                } else if (m == SIMPLE_REPLY_MAGIC) {
                    readFully(channel, simple.clear());
                    simple.flip();
                    int error = simple.getInt();
                    long handle = simple.getLong();
                    Request r = inFlight.get(handle);
                    if (r == null) {
                        throw new ProtocolViolation("simple reply for unknown handle " + handle);
                    }
                    if (error != 0) {
                        r.error(serverError(r, error, "", -1));
                    } else if (r instanceof ReadRequest rr) {
                        readFully(channel, ByteBuffer.wrap(rr.buf, rr.bufOffset, rr.length));
                        rr.covered = rr.length;
                    } else if (!(r instanceof CommandRequest)) {
                        throw new ProtocolViolation("simple reply without error to a block status request");
                    }
                    complete(handle, null);
                } else {
                    throw new ProtocolViolation("bad reply magic 0x" + Integer.toHexString(m));
                }
            }
        } catch (ProtocolViolation e) {
            failAll(protocolError(e.getMessage()));
            closeQuietly(channel);
        } catch (IOException e) {
            failAll(lost(e));
        }
    }

    private void onChunk(Request r, int type, long length) throws IOException {
        switch (type) {
            case CHUNK_NONE -> skip(length);
            case CHUNK_OFFSET_DATA -> {
                if (!(r instanceof ReadRequest rr) || length < 8) {
                    throw new ProtocolViolation("unexpected OFFSET_DATA chunk of length " + length);
                }
                long off = readPayload(8).getLong();
                long n = length - 8;
                if (off < rr.offset || off + n > rr.offset + rr.length) {
                    throw new ProtocolViolation(
                            "OFFSET_DATA " + off + "+" + n + " outside the request " + rr.offset + "+" + rr.length);
                }
                readFully(channel, ByteBuffer.wrap(rr.buf, rr.bufOffset + (int) (off - rr.offset), (int) n));
                rr.covered += n;
            }
            case CHUNK_OFFSET_HOLE -> {
                if (!(r instanceof ReadRequest rr) || length != 12) {
                    throw new ProtocolViolation("unexpected OFFSET_HOLE chunk of length " + length);
                }
                ByteBuffer p = readPayload(12);
                long off = p.getLong();
                long n = p.getInt() & 0xffffffffL;
                if (off < rr.offset || off + n > rr.offset + rr.length) {
                    throw new ProtocolViolation(
                            "OFFSET_HOLE " + off + "+" + n + " outside the request " + rr.offset + "+" + rr.length);
                }
                int from = rr.bufOffset + (int) (off - rr.offset);
                Arrays.fill(rr.buf, from, from + (int) n, (byte) 0); // the buffer may be reused
                rr.covered += n;
            }
            case CHUNK_BLOCK_STATUS -> {
                if (!(r instanceof StatusRequest sr) || length < 4 || (length - 4) % 8 != 0 || length > 1 << 26) {
                    throw new ProtocolViolation("unexpected BLOCK_STATUS chunk of length " + length);
                }
                ByteBuffer p = readPayload((int) length);
                int id = p.getInt();
                if (id == sr.contextId) {
                    long off = sr.offset;
                    while (p.hasRemaining()) {
                        long n = p.getInt() & 0xffffffffL;
                        int flags = p.getInt();
                        if (n == 0) {
                            throw new ProtocolViolation("zero-length extent in a block status reply");
                        }
                        sr.extents.add(new Extent(off, n, flags));
                        off += n;
                    }
                }
            }
            case CHUNK_ERROR, CHUNK_ERROR_OFFSET -> {
                if (length < 6 || length > 1 << 20) {
                    throw new ProtocolViolation("bad error chunk length " + length);
                }
                ByteBuffer p = readPayload((int) length);
                int error = p.getInt();
                int msgLen = p.getShort() & 0xffff;
                if (msgLen > p.remaining()) {
                    throw new ProtocolViolation("error chunk message longer than the chunk");
                }
                byte[] msg = new byte[msgLen];
                p.get(msg);
                long errOffset = type == CHUNK_ERROR_OFFSET && p.remaining() >= 8 ? p.getLong() : -1;
                r.error(serverError(r, error, new String(msg, StandardCharsets.UTF_8), errOffset));
            }
            default -> {
                if ((type & CHUNK_ERROR_BIT) != 0) {
                    skip(length);
                    r.error(serverError(r, -1, "unknown error chunk type " + type, -1));
                } else {
                    throw new ProtocolViolation("unknown reply chunk type " + type);
                }
            }
        }
    }

    private PermanentException serverError(Request r, int error, String message, long errOffset) {
        String what = r instanceof ReadRequest
                ? "read"
                : r instanceof CommandRequest c ? (c.type == CMD_WRITE ? "write" : "flush") : "block status";
        return new ServerError(
                error,
                "NBD server error " + error + (message.isEmpty() ? "" : " (" + message + ")")
                        + " for " + what + " of export '" + exportName + "' on " + socket + " at offset " + r.offset
                        + " length " + r.length + (errOffset >= 0 ? " (failing offset " + errOffset + ")" : "")
                        + "; check QEMU's log for I/O errors on the disk");
    }

    /** An error the server reported for one request: that request failed, the connection is fine. */
    public static final class ServerError extends PermanentException {
        private static final long serialVersionUID = 1L;
        private final int error;

        ServerError(int error, String message) {
            super(message);
            this.error = error;
        }

        ServerError(int error, String message, Throwable cause) {
            super(message, cause);
            this.error = error;
        }

        /** The NBD error code ({@code NBD_EINVAL} = 22, {@code NBD_EIO} = 5, ...); -1 if none. */
        public int error() {
            return error;
        }
    }

    private ByteBuffer readPayload(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(channel, b);
        return b.flip();
    }

    private void skip(long n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate((int) Math.min(n, 1 << 16));
        while (n > 0) {
            b.clear().limit((int) Math.min(n, b.capacity()));
            readFully(channel, b);
            n -= b.limit();
        }
    }

    private void complete(long handle, TidemarkException failed) {
        Request r = inFlight.remove(handle);
        if (r == null) {
            return;
        }
        slots.release();
        if (failed != null) {
            r.fail(failed);
        } else if (r.error != null) {
            r.fail(r.error);
        } else if (r instanceof ReadRequest rr && rr.covered != rr.length) {
            r.fail(protocolError("the reply to a read at " + rr.offset + " length " + rr.length + " covered "
                    + rr.covered + " bytes"));
        } else {
            r.succeed();
        }
    }

    private void failAll(TidemarkException e) {
        if (failure == null) {
            failure = e;
        }
        for (Long handle : new ArrayList<>(inFlight.keySet())) {
            complete(handle, failure);
        }
    }

    /** Sends {@code NBD_CMD_DISC} and closes the connection; pending requests fail as retriable. */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        ScheduledFuture<?> w = watchdog;
        if (w != null) {
            w.cancel(false);
        }
        if (failure == null) {
            ByteBuffer b = ByteBuffer.allocate(28);
            b.putInt(REQUEST_MAGIC).putShort((short) 0).putShort((short) CMD_DISC);
            b.putLong(handles.incrementAndGet()).putLong(0).putInt(0).flip();
            try {
                synchronized (writeLock) {
                    writeAll(channel, b);
                }
            } catch (IOException e) {
                log.debug("NBD_CMD_DISC to {} failed: {}", socket, e.toString());
            }
        }
        closeQuietly(channel);
        failAll(new RetriableException("the NBD client for export '" + exportName + "' on " + socket + " is closed"));
    }

    @Override
    public String toString() {
        return "NbdClient[" + exportName + " on " + socket + "]";
    }

    /** A malformed message from the server. */
    private static final class ProtocolViolation extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolViolation(String message) {
            super(message);
        }
    }

    private abstract static sealed class Request permits ReadRequest, StatusRequest, CommandRequest {
        final long offset;
        final int length;
        TidemarkException error;

        Request(long offset, int length) {
            this.offset = offset;
            this.length = length;
        }

        void error(TidemarkException e) {
            if (error == null) {
                error = e;
            }
        }

        abstract void succeed();

        abstract void fail(TidemarkException e);
    }

    private static final class ReadRequest extends Request {
        final byte[] buf;
        final int bufOffset;
        final CompletableFuture<Void> done = new CompletableFuture<>();
        long covered;

        ReadRequest(long offset, int length, byte[] buf, int bufOffset) {
            super(offset, length);
            this.buf = buf;
            this.bufOffset = bufOffset;
        }

        @Override
        void succeed() {
            done.complete(null);
        }

        @Override
        void fail(TidemarkException e) {
            done.completeExceptionally(e);
        }
    }

    /** A write (with its payload) or a flush: no reply data. */
    private static final class CommandRequest extends Request {
        final int type;
        final byte[] data;
        final int dataOffset;
        final CompletableFuture<Void> done = new CompletableFuture<>();

        CommandRequest(int type, long offset, int length, byte[] data, int dataOffset) {
            super(offset, length);
            this.type = type;
            this.data = data;
            this.dataOffset = dataOffset;
        }

        @Override
        void succeed() {
            done.complete(null);
        }

        @Override
        void fail(TidemarkException e) {
            done.completeExceptionally(e);
        }
    }

    private static final class StatusRequest extends Request {
        final int contextId;
        final List<Extent> extents = new ArrayList<>();
        final CompletableFuture<List<Extent>> done = new CompletableFuture<>();

        StatusRequest(long offset, int length, int contextId) {
            super(offset, length);
            this.contextId = contextId;
        }

        @Override
        void succeed() {
            done.complete(extents);
        }

        @Override
        void fail(TidemarkException e) {
            done.completeExceptionally(e);
        }
    }
}
