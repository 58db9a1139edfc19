package io.tidemark.workers.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One QMP connection to a QEMU monitor over a Unix socket.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #connect} returns only after the greeting was read and {@code qmp_capabilities}
 *       accepted; an unreachable or silent socket is a {@link RetriableException} naming the path.
 *   <li>{@link #execute} is thread-safe; each command carries an {@code id} and its reply is matched
 *       by that id. It returns the {@code "return"} value or throws {@link QmpException} for an
 *       {@code "error"} reply. A lost connection or a reply that does not come in time is a {@link
 *       RetriableException}; after it the client is closed.
 *   <li>Asynchronous events are buffered from the moment the connection is made (the most recent
 *       {@value #MAX_BUFFERED_EVENTS} are kept), so an event that arrives before {@link #awaitEvent}
 *       is called is not lost. Each event is handed to at most one waiter.
 * </ul>
 *
 * <p>QEMU serves one client per {@code -qmp} socket: while this client is open, a second one on the
 * same socket gets no greeting. So callers connect for one piece of work and close at once.
 *
 * <p>Every wait is bounded by the timeout given to {@link #connect(Path, Duration)}: the connect
 * itself (a stopped QEMU stops accepting, and once its listen backlog is full a connect would block
 * for ever), the greeting, each command's reply and each awaited event. A QEMU that does not answer
 * in time is a {@link RetriableException} naming the socket and saying QEMU may be stopped or hung.
 * {@link #close()} from another thread unblocks every waiting caller at once.
 */
public final class QmpClient implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(QmpClient.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** How long {@link #connect(Path)} waits for the greeting, and commands for their reply. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    static final int MAX_BUFFERED_EVENTS = 1000;

    /** What a QEMU that does not answer in time may be, and what to do. */
    static final String STOPPED =
            "QEMU may be stopped (SIGSTOP) or hung; check the VM's QEMU process, the job may be" + " retried later";

    private final Path socket;
    private final SocketChannel channel;
    private final Duration commandTimeout;
    private final Object writeLock = new Object();
    private final AtomicLong ids = new AtomicLong();
    private final Map<String, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
    private final Object eventLock = new Object();
    private final Deque<JsonNode> events = new ArrayDeque<>(); // guarded by eventLock
    private final CompletableFuture<JsonNode> greeting = new CompletableFuture<>();
    private final Thread reader;
    private volatile TidemarkException failure;
    private volatile boolean closing;

    private QmpClient(Path socket, SocketChannel channel, Duration commandTimeout) {
        this.socket = socket;
        this.channel = channel;
        this.commandTimeout = commandTimeout;
        this.reader = new Thread(this::readLoop, "qmp-reader " + socket.getFileName());
        this.reader.setDaemon(true);
    }

    /** Connects with {@link #DEFAULT_TIMEOUT} for the greeting and for every command. */
    public static QmpClient connect(Path socket) {
        return connect(socket, DEFAULT_TIMEOUT);
    }

    /**
     * Connects to the QMP socket, reads the greeting and leaves negotiation mode.
     *
     * @param timeout how long to wait for the greeting and, later, for each command's reply
     * @throws RetriableException when the socket is missing, refuses the connection, or sends no
     *     greeting in time (another client holds the monitor, or QEMU is hung)
     */
    public static QmpClient connect(Path socket, Duration timeout) {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException e) {
            throw new RetriableException("cannot open a Unix socket channel for QMP socket " + socket + ": " + e, e);
        }
        // a QEMU that does not accept (stopped, hung) leaves connect() blocked once its listen backlog is
        // full: whoever flips this first wins, the connect (done) or the watchdog (closes the channel)
        AtomicBoolean settled = new AtomicBoolean();
        CompletableFuture.delayedExecutor(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .execute(() -> {
                    if (settled.compareAndSet(false, true)) {
                        closeQuietly(channel);
                    }
                });
        long started = System.nanoTime();
        try {
            channel.connect(UnixDomainSocketAddress.of(socket));
            if (!settled.compareAndSet(false, true)) {
                throw new AsynchronousCloseException();
            }
        } catch (AsynchronousCloseException e) {
            closeQuietly(channel);
            if (Thread.currentThread().isInterrupted()) {
                throw new RetriableException("interrupted while connecting to the QMP socket " + socket, e);
            }
            throw new Unanswered(
                    "the QMP socket " + socket + " did not accept a connection within " + timeout + ": " + STOPPED, e);
        } catch (IOException e) {
            settled.set(true);
            closeQuietly(channel);
            throw new RetriableException(
                    "cannot connect to the QMP socket " + socket + " (" + e + "); check that the VM is running and that"
                            + " QEMU was started with -qmp unix:" + socket + ",server=on,wait=off",
                    e);
        }
        QmpClient client = new QmpClient(socket, channel, timeout);
        client.reader.start();
        try {
            client.awaitGreeting(timeout.minusNanos(System.nanoTime() - started), timeout);
            client.execute("qmp_capabilities");
            return client;
        } catch (TidemarkException e) {
            client.close();
            throw e;
        }
    }

    private void awaitGreeting(Duration left, Duration timeout) {
        try {
            JsonNode g = greeting.get(Math.max(1, left.toMillis()), TimeUnit.MILLISECONDS);
            log.debug("QMP greeting on {}: {}", socket, g);
        } catch (TimeoutException e) {
            throw new Unanswered(
                    "QMP socket " + socket + " accepted the connection but sent no greeting within " + timeout + ": "
                            + STOPPED + "; or another client holds this monitor (QEMU serves one client per -qmp"
                            + " socket)",
                    e);
        } catch (ExecutionException e) {
            throw rethrown(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while waiting for the QMP greeting on " + socket, e);
        }
    }

    /**
     * Something listens on the socket but does not answer in time: QEMU is stopped or hung, or
     * another client holds the monitor. The VM exists; it is only unavailable now.
     */
    public static final class Unanswered extends RetriableException {
        private static final long serialVersionUID = 1L;

        Unanswered(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The socket this client is connected to. */
    public Path socket() {
        return socket;
    }

    /** The {@code QMP} object of the greeting (version and capabilities). */
    public JsonNode greeting() {
        return greeting.getNow(JSON.nullNode());
    }

    /** False once the connection was closed by either side or failed. */
    public boolean isOpen() {
        return failure == null && !closing && channel.isOpen();
    }

    /** A fresh, empty argument object for {@link #execute(String, ObjectNode)}. */
    public static ObjectNode args() {
        return JSON.createObjectNode();
    }

    /** Runs a command without arguments; see {@link #execute(String, ObjectNode, Duration)}. */
    public JsonNode execute(String command) {
        return execute(command, null, commandTimeout);
    }

    /** Runs a command with the client's default timeout; see {@link #execute(String, ObjectNode, Duration)}. */
    public JsonNode execute(String command, ObjectNode args) {
        return execute(command, args, commandTimeout);
    }

    /**
     * Sends one command and waits for its reply.
     *
     * @param args the {@code "arguments"} object, or null for none
     * @return the {@code "return"} value (an empty object for most commands)
     * @throws QmpException when QEMU replies with an error
     * @throws RetriableException when the connection is lost or no reply comes within {@code
     *     timeout}
     */
    public JsonNode execute(String command, ObjectNode args, Duration timeout) {
        String id = "c" + ids.incrementAndGet();
        ObjectNode message = JSON.createObjectNode().put("execute", command);
        if (args != null) {
            message.set("arguments", args);
        }
        message.put("id", id);
        CompletableFuture<JsonNode> reply = new CompletableFuture<>();
        pending.put(id, reply);
        try {
            ensureOpen();
            send(message);
            JsonNode r = reply.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            JsonNode error = r.get("error");
            if (error != null) {
                throw new QmpException(
                        socket,
                        command,
                        error.path("class").asText("?"),
                        error.path("desc").asText(error.toString()));
            }
            return r.has("return") ? r.get("return") : JSON.nullNode();
        } catch (TimeoutException e) {
            close();
            throw new RetriableException(
                    "QMP command '" + command + "' on " + socket + " got no reply within " + timeout
                            + " (the connection was closed): " + STOPPED,
                    e);
        } catch (ExecutionException e) {
            throw rethrown(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    "interrupted while waiting for the reply to QMP command '" + command + "' on " + socket, e);
        } finally {
            pending.remove(id);
        }
    }

    /**
     * Waits for an asynchronous event, including one that arrived before this call and was not yet
     * handed to another waiter. The matching event is consumed.
     *
     * @param name the event name, for example {@code BLOCK_JOB_CANCELLED}
     * @param match tested against the whole event object ({@code event}, {@code data}, {@code
     *     timestamp})
     * @return the whole event object
     * @throws RetriableException when no such event comes within {@code timeout} or the connection
     *     is lost
     */
    public JsonNode awaitEvent(String name, Predicate<JsonNode> match, Duration timeout) {
        return awaitAnyEvent(Set.of(name), match, timeout);
    }

    /** Like {@link #awaitEvent} for the first event whose name is one of {@code names}. */
    public JsonNode awaitAnyEvent(Set<String> names, Predicate<JsonNode> match, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (eventLock) {
            while (true) {
                for (Iterator<JsonNode> it = events.iterator(); it.hasNext(); ) {
                    JsonNode e = it.next();
                    if (names.contains(e.path("event").asText()) && match.test(e)) {
                        it.remove();
                        return e;
                    }
                }
                ensureOpen();
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new RetriableException("no " + String.join(" or ", names) + " event on QMP socket " + socket
                            + " within " + timeout + ": QEMU may be slow, " + STOPPED);
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(eventLock, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException(
                            "interrupted while waiting for " + names + " on QMP socket " + socket, e);
                }
            }
        }
    }

    private void ensureOpen() {
        TidemarkException f = failure;
        if (f != null) {
            throw rethrown(f);
        }
        if (closing) {
            throw new RetriableException("the QMP client for " + socket + " is closed");
        }
    }

    private void send(ObjectNode message) {
        byte[] bytes;
        try {
            bytes = (JSON.writeValueAsString(message) + "\n").getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new PermanentException("cannot encode QMP command " + message + ": " + e.getMessage(), e);
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        synchronized (writeLock) {
            try {
                while (buf.hasRemaining()) {
                    channel.write(buf);
                }
            } catch (IOException e) {
                RetriableException lost = new RetriableException(
                        "lost the QMP connection to " + socket + " while sending: " + e + "; is the VM still running?",
                        e);
                fail(lost);
                throw lost;
            }
        }
    }

    private void readLoop() {
        try (BufferedReader in =
                new BufferedReader(new InputStreamReader(new ChannelInput(channel), StandardCharsets.UTF_8), 1 << 16)) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.isBlank()) {
                    dispatch(JSON.readTree(line));
                }
            }
            fail(new RetriableException("QEMU closed the QMP socket " + socket + " (the VM quit or crashed)"));
        } catch (IOException e) {
            fail(
                    closing
                            ? new RetriableException("the QMP client for " + socket + " is closed", e)
                            : new RetriableException(
                                    "lost the QMP connection to " + socket + ": " + e + "; is the VM still running?",
                                    e));
        }
    }

    private void dispatch(JsonNode msg) {
        if (msg.has("QMP")) {
            greeting.complete(msg.get("QMP"));
        } else if (msg.has("event")) {
            log.debug("QMP event on {}: {}", socket, msg);
            synchronized (eventLock) {
                events.addLast(msg);
                while (events.size() > MAX_BUFFERED_EVENTS) {
                    events.removeFirst();
                }
                eventLock.notifyAll();
            }
        } else {
            CompletableFuture<JsonNode> waiter = pending.get(msg.path("id").asText(""));
            if (waiter != null) {
                waiter.complete(msg);
            } else {
                log.warn("unexpected QMP message on {} (no command waits for it): {}", socket, msg);
            }
        }
    }

    private void fail(TidemarkException e) {
        if (failure == null) {
            failure = e;
        }
        greeting.completeExceptionally(e);
        pending.values().forEach(f -> f.completeExceptionally(e));
        synchronized (eventLock) {
            eventLock.notifyAll();
        }
    }

    /** Re-throws a failure from the reader thread with the caller's stack, keeping its kind. */
    private static TidemarkException rethrown(Throwable cause) {
        if (cause instanceof QmpException q) {
            return q;
        }
        if (cause instanceof PermanentException p) {
            return new PermanentException(p.getMessage(), p);
        }
        if (cause instanceof TidemarkException t) {
            return new RetriableException(t.getMessage(), t);
        }
        return new RetriableException("QMP failure: " + cause, cause);
    }

    /** Closes the connection; pending commands and event waits fail with a {@link RetriableException}. */
    @Override
    public void close() {
        closing = true;
        closeQuietly(channel);
        fail(new RetriableException("the QMP client for " + socket + " is closed"));
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            log.debug("closing QMP channel: {}", e.toString());
        }
    }

    @Override
    public String toString() {
        return "QmpClient[" + socket + "]";
    }

    /**
     * Reads straight from the channel. {@code Channels.newInputStream} would hold the channel's
     * blocking lock while blocked in a read, and so block every concurrent write.
     */
    private static final class ChannelInput extends InputStream {
        private final SocketChannel channel;

        ChannelInput(SocketChannel channel) {
            this.channel = channel;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            int n;
            do {
                n = channel.read(ByteBuffer.wrap(b, off, len));
            } while (n == 0);
            return n;
        }
    }
}
