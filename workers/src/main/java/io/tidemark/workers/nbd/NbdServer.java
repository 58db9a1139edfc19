package io.tidemark.workers.nbd;

import static io.tidemark.workers.nbd.NbdProtocol.*;

import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Phaser;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A read-only NBD server for one export, on a Unix socket or on {@code 127.0.0.1}.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>Fixed newstyle negotiation with {@code NBD_OPT_EXPORT_NAME}, {@code INFO}, {@code GO},
 *       {@code LIST}, {@code ABORT}, {@code STRUCTURED_REPLY} and {@code LIST/SET_META_CONTEXT}
 *       ({@code base:allocation} only). The export answers to its name and to the empty name (the
 *       default export of {@code nbd+unix:///?socket=…}).
 *   <li>Transmission: {@code READ}, {@code BLOCK_STATUS}, {@code CACHE} (a prefetch hint), {@code
 *       FLUSH} (nothing to flush) and {@code DISC}. Writes and trims are refused with {@code EPERM}.
 *       With structured replies a read is answered with one data (or hole) chunk, otherwise with a
 *       simple reply.
 *   <li>Any number of clients, each with any number of requests in flight; requests are served by
 *       a pool of {@code workers} threads and may be answered out of order.
 *   <li>When {@link Export#read} fails, the request gets {@code EIO} (with the message in a
 *       structured error chunk) and the failure is logged, naming the export and range; data is
 *       never invented.
 *   <li>{@link #close()} stops accepting, closes every connection and removes the Unix socket.
 * </ul>
 */
public final class NbdServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(NbdServer.class);

    /** The largest read or status request served; QEMU never asks for more than 32 MiB. */
    public static final int MAX_REQUEST = 32 << 20;

    /** The meta context id of {@code base:allocation} in replies. */
    static final int BASE_ALLOCATION_ID = 1;

    /** The data one export serves. Implementations must be thread-safe. */
    public interface Export {

        /** The export name clients ask for. */
        String name();

        /** The export's size in bytes. */
        long size();

        /** The block size clients should prefer (a power of two, at most 32 MiB). */
        int preferredBlockSize();

        /**
         * Fills {@code buf[bufOffset, bufOffset + length)} with the bytes at {@code [offset, offset +
         * length)}, which lies within the export.
         *
         * @throws TidemarkException when the bytes cannot be served as they were stored
         */
        void read(long offset, byte[] buf, int bufOffset, int length);

        /**
         * The {@code base:allocation} map of {@code [offset, offset + length)}: adjacent extents in
         * order, starting at {@code offset}, covering at most {@code length}. The default says
         * "all data".
         */
        default List<Extent> allocation(long offset, long length) {
            return List.of(new Extent(offset, length, 0));
        }

        /** A hint that {@code [offset, offset + length)} will be read soon. */
        default void prefetch(long offset, long length) {}
    }

    private final Export export;
    private final ServerSocketChannel listener;
    private final Path socket;
    private final int port;
    private final ExecutorService workers;
    private final Thread acceptor;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger connectionIds = new AtomicInteger();
    private final AtomicLong bytesServed = new AtomicLong();
    private final AtomicLong reads = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private volatile long firstReadNanos;
    private volatile boolean closed;

    private NbdServer(Export export, ServerSocketChannel listener, Path socket, int port, int workers) {
        this.export = export;
        this.listener = listener;
        this.socket = socket;
        this.port = port;
        this.workers =
                Executors.newFixedThreadPool(Math.max(1, workers), DaemonThreads.named("nbd-worker " + export.name()));
        this.acceptor = new Thread(this::acceptLoop, "nbd-accept " + export.name());
        this.acceptor.setDaemon(true);
    }

    /**
     * Serves {@code export} on a new Unix socket at {@code socket} (an existing file there is an
     * error: another server may own it).
     *
     * @param workers threads that serve requests
     */
    public static NbdServer unix(Path socket, Export export, int workers) {
        Path abs = socket.toAbsolutePath();
        try {
            ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.bind(UnixDomainSocketAddress.of(abs));
            } catch (IOException e) {
                ch.close();
                throw new RetriableException(
                        "cannot listen on the NBD socket " + abs + " (" + e
                                + "); remove a stale socket file or choose another directory",
                        e);
            }
            return start(new NbdServer(export, ch, abs, -1, workers));
        } catch (IOException e) {
            throw new RetriableException("cannot open a Unix server socket for " + abs + ": " + e, e);
        }
    }

    /** Serves {@code export} on {@code 127.0.0.1} at an ephemeral port. */
    public static NbdServer loopback(Export export, int workers) {
        try {
            ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.INET);
            ch.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = ((InetSocketAddress) ch.getLocalAddress()).getPort();
            return start(new NbdServer(export, ch, null, port, workers));
        } catch (IOException e) {
            throw new RetriableException("cannot listen on 127.0.0.1 for NBD: " + e, e);
        }
    }

    private static NbdServer start(NbdServer s) {
        s.acceptor.start();
        log.info("serving NBD export '{}' ({} bytes) on {}", s.export.name(), s.export.size(), s.uri());
        return s;
    }

    /** The Unix socket, or null for a TCP server. */
    public Path socket() {
        return socket;
    }

    /** The TCP port, or -1 for a Unix socket server. */
    public int port() {
        return port;
    }

    /** The URI QEMU opens ({@code nbd+unix:///NAME?socket=PATH} or {@code nbd://127.0.0.1:PORT/NAME}). */
    public String uri() {
        return socket != null
                ? "nbd+unix:///" + export.name() + "?socket=" + socket
                : "nbd://127.0.0.1:" + port + "/" + export.name();
    }

    public Export export() {
        return export;
    }

    /** Bytes answered to reads so far. */
    public long bytesServed() {
        return bytesServed.get();
    }

    /** Read requests answered (successfully or not). */
    public long reads() {
        return reads.get();
    }

    /** Requests answered with an error. */
    public long errors() {
        return errors.get();
    }

    /** {@link System#nanoTime()} when the first read was answered, or 0. */
    public long firstReadNanos() {
        return firstReadNanos;
    }

    /** Connections currently open. */
    public int connections() {
        return connections.size();
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!closed) {
                    log.warn("NBD export '{}': accept failed: {}", export.name(), e.toString());
                }
                return;
            }
            Connection c = new Connection(ch, connectionIds.incrementAndGet());
            connections.add(c);
            if (closed) {
                c.close();
                return;
            }
            Thread t = new Thread(c::run, "nbd-conn " + export.name() + " #" + c.id);
            t.setDaemon(true);
            t.start();
        }
    }

    /** Stops accepting, closes every connection, stops the workers and removes the Unix socket. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            listener.close();
        } catch (IOException e) {
            log.debug("closing the NBD listener: {}", e.toString());
        }
        for (Connection c : new ArrayList<>(connections)) {
            c.close();
        }
        workers.shutdownNow();
        if (socket != null) {
            try {
                Files.deleteIfExists(socket);
            } catch (IOException e) {
                log.warn("cannot remove the NBD socket {}: {}", socket, e.toString());
            }
        }
        log.info(
                "stopped NBD export '{}' on {}: {} reads, {} bytes served, {} errors",
                export.name(),
                uri(),
                reads.get(),
                bytesServed.get(),
                errors.get());
    }

    @Override
    public String toString() {
        return "NbdServer[" + export.name() + " on " + uri() + "]";
    }

    /** One client: negotiation, then a request loop; replies are written under {@link #writeLock}. */
    private final class Connection {
        final SocketChannel ch;
        final int id;
        final Object writeLock = new Object();
        /** Requests handed to the workers and not yet answered, plus one for the reader. */
        final Phaser inFlight = new Phaser(1);

        boolean noZeroes;
        boolean structured;
        boolean allocationSelected;

        Connection(SocketChannel ch, int id) {
            this.ch = ch;
            this.id = id;
        }

        void run() {
            try {
                if (negotiate()) {
                    transmit();
                }
            } catch (ProtocolError e) {
                log.warn("NBD client #{} of '{}' broke the protocol: {}; closing", id, export.name(), e.getMessage());
            } catch (EOFException | ClosedChannelException e) {
                log.debug("NBD client #{} of '{}' went away", id, export.name());
            } catch (IOException e) {
                if (!closed) {
                    log.info("NBD client #{} of '{}' dropped: {}", id, export.name(), e.toString());
                }
            } finally {
                // answer what is in flight (a DISC lets pending reads finish), then hang up
                int phase = inFlight.arrive();
                if (!closed) {
                    try {
                        inFlight.awaitAdvanceInterruptibly(phase, 60, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } catch (TimeoutException e) {
                        log.warn(
                                "NBD client #{} of '{}': requests still in flight after 60 s; closing",
                                id,
                                export.name());
                    }
                }
                close();
            }
        }

        void close() {
            connections.remove(this);
            closeQuietly(ch);
        }

        // ---- negotiation

        /** Returns true when the client entered transmission, false when it aborted. */
        boolean negotiate() throws IOException {
            ByteBuffer hello = ByteBuffer.allocate(18);
            hello.putLong(NBDMAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
            writeAll(ch, hello.flip());
            ByteBuffer cf = ByteBuffer.allocate(4);
            readFully(ch, cf);
            int clientFlags = cf.getInt(0);
            if ((clientFlags & ~(FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES)) != 0) {
                throw new ProtocolError("unknown client flags 0x" + Integer.toHexString(clientFlags));
            }
            noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) != 0;
            ByteBuffer head = ByteBuffer.allocate(16);
            while (true) {
                readFully(ch, head.clear());
                head.flip();
                if (head.getLong() != IHAVEOPT) {
                    throw new ProtocolError("bad option magic");
                }
                int option = head.getInt();
                long length = head.getInt() & 0xffffffffL;
                if (length > MAX_OPTION_LENGTH) {
                    throw new ProtocolError("option " + option + " of " + length + " bytes");
                }
                ByteBuffer data = ByteBuffer.allocate((int) length);
                readFully(ch, data);
                data.flip();
                switch (option) {
                    case OPT_EXPORT_NAME -> {
                        String name = utf8(data, data.remaining());
                        if (!matches(name)) {
                            // the old option has no way to say no but closing
                            throw new ProtocolError("unknown export '" + name + "' requested with EXPORT_NAME");
                        }
                        ByteBuffer b = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124));
                        b.putLong(export.size()).putShort((short) transmissionFlags());
                        writeAll(ch, b.position(b.capacity()).flip());
                        return true;
                    }
                    case OPT_ABORT -> {
                        reply(option, REP_ACK, ByteBuffer.allocate(0));
                        return false;
                    }
                    case OPT_LIST -> {
                        byte[] name = export.name().getBytes(StandardCharsets.UTF_8);
                        reply(
                                option,
                                REP_SERVER,
                                ByteBuffer.allocate(4 + name.length)
                                        .putInt(name.length)
                                        .put(name)
                                        .flip());
                        reply(option, REP_ACK, ByteBuffer.allocate(0));
                    }
                    case OPT_STRUCTURED_REPLY -> {
                        if (data.hasRemaining()) {
                            error(option, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
                        } else {
                            structured = true;
                            reply(option, REP_ACK, ByteBuffer.allocate(0));
                        }
                    }
                    case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data);
                    case OPT_INFO, OPT_GO -> {
                        if (info(option, data) && option == OPT_GO) {
                            return true;
                        }
                    }
                    case OPT_STARTTLS -> error(option, REP_ERR_POLICY, "TLS is not offered on this socket");
                    default -> error(option, REP_ERR_UNSUP, "option " + option + " is not supported");
                }
            }
        }

        boolean matches(String name) {
            return name.isEmpty() || name.equals(export.name());
        }

        int transmissionFlags() {
            return TFLAG_HAS_FLAGS | TFLAG_READ_ONLY | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN | TFLAG_SEND_CACHE;
        }

        /** INFO/GO: u32 name length, name, u16 count, u16 info requests. Returns true on success. */
        boolean info(int option, ByteBuffer data) throws IOException {
            if (data.remaining() < 6) {
                error(option, REP_ERR_INVALID, "short INFO/GO request");
                return false;
            }
            long nameLen = data.getInt() & 0xffffffffL;
            if (nameLen > data.remaining() - 2) {
                error(option, REP_ERR_INVALID, "export name longer than the option");
                return false;
            }
            String name = utf8(data, (int) nameLen);
            int count = data.getShort() & 0xffff;
            if (data.remaining() != count * 2) {
                error(option, REP_ERR_INVALID, "bad information request list");
                return false;
            }
            boolean blockSize = false;
            for (int i = 0; i < count; i++) {
                blockSize |= (data.getShort() & 0xffff) == INFO_BLOCK_SIZE;
            }
            if (!matches(name)) {
                error(
                        option,
                        REP_ERR_UNKNOWN,
                        "no export named '" + name + "'; this server has '" + export.name() + "'");
                return false;
            }
            reply(
                    option,
                    REP_INFO,
                    ByteBuffer.allocate(12)
                            .putShort((short) INFO_EXPORT)
                            .putLong(export.size())
                            .putShort((short) transmissionFlags())
                            .flip());
            if (blockSize) {
                reply(
                        option,
                        REP_INFO,
                        ByteBuffer.allocate(14)
                                .putShort((short) INFO_BLOCK_SIZE)
                                .putInt(1)
                                .putInt(Math.min(export.preferredBlockSize(), MAX_REQUEST))
                                .putInt(MAX_REQUEST)
                                .flip());
            }
            reply(option, REP_ACK, ByteBuffer.allocate(0));
            return true;
        }

        /** u32 name length, name, u32 query count, (u32 length, query)*. Only base:allocation exists. */
        void metaContext(int option, ByteBuffer data) throws IOException {
            boolean set = option == OPT_SET_META_CONTEXT;
            if (set && !structured) {
                error(option, REP_ERR_INVALID, "SET_META_CONTEXT needs structured replies first");
                return;
            }
            try {
                int nameLen = data.getInt();
                if (nameLen < 0 || nameLen > data.remaining()) {
                    error(option, REP_ERR_INVALID, "bad export name length");
                    return;
                }
                String name = utf8(data, nameLen);
                int count = data.getInt();
                List<String> queries = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    int len = data.getInt();
                    if (len < 0 || len > data.remaining()) {
                        error(option, REP_ERR_INVALID, "bad query length");
                        return;
                    }
                    queries.add(utf8(data, len));
                }
                if (!matches(name)) {
                    error(option, REP_ERR_UNKNOWN, "no export named '" + name + "'");
                    return;
                }
                boolean offer = set
                        ? queries.contains(NbdClient.BASE_ALLOCATION)
                        : queries.isEmpty()
                                || queries.stream()
                                        .anyMatch(q -> q.equals("base:") || q.equals(NbdClient.BASE_ALLOCATION));
                if (set) {
                    allocationSelected = offer;
                }
                if (offer) {
                    byte[] ctx = NbdClient.BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);
                    reply(
                            option,
                            REP_META_CONTEXT,
                            ByteBuffer.allocate(4 + ctx.length)
                                    .putInt(BASE_ALLOCATION_ID)
                                    .put(ctx)
                                    .flip());
                }
                reply(option, REP_ACK, ByteBuffer.allocate(0));
            } catch (java.nio.BufferUnderflowException e) {
                error(option, REP_ERR_INVALID, "truncated meta context request");
            }
        }

        void reply(int option, int type, ByteBuffer data) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(20 + data.remaining());
            b.putLong(OPTION_REPLY_MAGIC)
                    .putInt(option)
                    .putInt(type)
                    .putInt(data.remaining())
                    .put(data);
            writeAll(ch, b.flip());
        }

        void error(int option, int type, String message) throws IOException {
            reply(option, type, StandardCharsets.UTF_8.encode(message));
        }

        // ---- transmission

        void transmit() throws IOException {
            ByteBuffer req = ByteBuffer.allocate(28);
            while (!closed) {
                readFully(ch, req.clear());
                req.flip();
                if (req.getInt() != REQUEST_MAGIC) {
                    throw new ProtocolError("bad request magic");
                }
                int flags = req.getShort() & 0xffff;
                int type = req.getShort() & 0xffff;
                long handle = req.getLong();
                long offset = req.getLong();
                long length = req.getInt() & 0xffffffffL;
                switch (type) {
                    case CMD_DISC -> {
                        return;
                    }
                    case CMD_READ -> {
                        if (!inRange(offset, length) || length > MAX_REQUEST) {
                            simpleError(handle, EINVAL, "read " + offset + "+" + length + " outside the export");
                        } else {
                            dispatch(() -> read(handle, offset, (int) length));
                        }
                    }
                    case CMD_BLOCK_STATUS -> {
                        if (!structured || !allocationSelected) {
                            simpleError(handle, EINVAL, "no meta context selected");
                        } else if (!inRange(offset, length) || length == 0) {
                            simpleError(handle, EINVAL, "block status " + offset + "+" + length + " outside");
                        } else {
                            boolean one = (flags & CMD_FLAG_REQ_ONE) != 0;
                            dispatch(() -> blockStatus(handle, offset, length, one));
                        }
                    }
                    case CMD_CACHE -> {
                        if (inRange(offset, length)) {
                            export.prefetch(offset, length);
                        }
                        simpleReply(handle, 0);
                    }
                    case CMD_FLUSH -> simpleReply(handle, 0);
                    case CMD_WRITE -> {
                        if (length > MAX_REQUEST) {
                            throw new ProtocolError("write of " + length + " bytes");
                        }
                        discard(length);
                        simpleError(handle, EPERM, "the export is read-only");
                    }
                    case CMD_TRIM, CMD_WRITE_ZEROES -> simpleError(handle, EPERM, "the export is read-only");
                    default -> simpleError(handle, EINVAL, "unknown command " + type);
                }
            }
        }

        boolean inRange(long offset, long length) {
            return offset >= 0 && offset <= export.size() && length <= export.size() - offset;
        }

        void dispatch(IoTask task) {
            inFlight.register();
            try {
                workers.execute(() -> {
                    try {
                        task.run();
                    } catch (IOException e) {
                        log.debug("NBD client #{} of '{}': reply not sent: {}", id, export.name(), e.toString());
                        closeQuietly(ch);
                    } finally {
                        inFlight.arriveAndDeregister();
                    }
                });
            } catch (RejectedExecutionException e) {
                inFlight.arriveAndDeregister();
                closeQuietly(ch);
            }
        }

        void read(long handle, long offset, int length) throws IOException {
            byte[] data = new byte[length];
            try {
                export.read(offset, data, 0, length);
            } catch (TidemarkException | IllegalStateException e) {
                reads.incrementAndGet();
                errors.incrementAndGet();
                log.error(
                        "NBD export '{}': read {}+{} answered with EIO: {}",
                        export.name(),
                        offset,
                        length,
                        e.getMessage());
                sendError(handle, EIO, e.getMessage());
                return;
            }
            if (structured) {
                ByteBuffer h = ByteBuffer.allocate(28);
                h.putInt(STRUCTURED_REPLY_MAGIC)
                        .putShort((short) REPLY_FLAG_DONE)
                        .putShort((short) CHUNK_OFFSET_DATA)
                        .putLong(handle)
                        .putInt(8 + length)
                        .putLong(offset)
                        .flip();
                write(h, ByteBuffer.wrap(data));
            } else {
                ByteBuffer h = ByteBuffer.allocate(16);
                h.putInt(SIMPLE_REPLY_MAGIC).putInt(0).putLong(handle).flip();
                write(h, ByteBuffer.wrap(data));
            }
            reads.incrementAndGet();
            bytesServed.addAndGet(length);
            if (firstReadNanos == 0) {
                firstReadNanos = System.nanoTime();
            }
        }

        void blockStatus(long handle, long offset, long length, boolean one) throws IOException {
            List<Extent> extents;
            try {
                extents = export.allocation(offset, Math.min(length, MAX_REQUEST));
            } catch (TidemarkException e) {
                errors.incrementAndGet();
                log.error(
                        "NBD export '{}': block status {}+{} failed: {}",
                        export.name(),
                        offset,
                        length,
                        e.getMessage());
                sendError(handle, EIO, e.getMessage());
                return;
            }
            int n = one ? Math.min(1, extents.size()) : extents.size();
            ByteBuffer b = ByteBuffer.allocate(20 + 4 + 8 * n);
            b.putInt(STRUCTURED_REPLY_MAGIC)
                    .putShort((short) REPLY_FLAG_DONE)
                    .putShort((short) CHUNK_BLOCK_STATUS)
                    .putLong(handle)
                    .putInt(4 + 8 * n)
                    .putInt(BASE_ALLOCATION_ID);
            for (int i = 0; i < n; i++) {
                Extent e = extents.get(i);
                b.putInt((int) Math.min(e.length(), 0xffffffffL)).putInt(e.flags());
            }
            write(b.flip());
        }

        /** An error to a request that may carry data: a structured error chunk when negotiated. */
        void sendError(long handle, int errno, String message) throws IOException {
            if (!structured) {
                simpleReply(handle, errno);
                return;
            }
            byte[] msg = truncate(message);
            ByteBuffer b = ByteBuffer.allocate(20 + 6 + msg.length);
            b.putInt(STRUCTURED_REPLY_MAGIC)
                    .putShort((short) REPLY_FLAG_DONE)
                    .putShort((short) CHUNK_ERROR)
                    .putLong(handle)
                    .putInt(6 + msg.length)
                    .putInt(errno)
                    .putShort((short) msg.length)
                    .put(msg);
            write(b.flip());
        }

        void simpleError(long handle, int errno, String why) throws IOException {
            errors.incrementAndGet();
            log.debug("NBD client #{} of '{}': errno {}: {}", id, export.name(), errno, why);
            simpleReply(handle, errno);
        }

        void simpleReply(long handle, int errno) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(16);
            b.putInt(SIMPLE_REPLY_MAGIC).putInt(errno).putLong(handle).flip();
            write(b);
        }

        void write(ByteBuffer... parts) throws IOException {
            synchronized (writeLock) {
                for (ByteBuffer p : parts) {
                    writeAll(ch, p);
                }
            }
        }

        void discard(long n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate((int) Math.min(Math.max(n, 1), 1 << 16));
            while (n > 0) {
                b.clear().limit((int) Math.min(n, b.capacity()));
                readFully(ch, b);
                n -= b.limit();
            }
        }
    }

    private static byte[] truncate(String message) {
        byte[] b = String.valueOf(message).getBytes(StandardCharsets.UTF_8);
        return b.length <= 4096 ? b : java.util.Arrays.copyOf(b, 4096);
    }

    private static String utf8(ByteBuffer b, int n) {
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @FunctionalInterface
    private interface IoTask {
        void run() throws IOException;
    }

    /** The client sent something the protocol does not allow; the connection is closed. */
    private static final class ProtocolError extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolError(String message) {
            super(message);
        }
    }
}
