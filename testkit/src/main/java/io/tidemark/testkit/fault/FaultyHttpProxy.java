package io.tidemark.testkit.fault;

import static java.nio.charset.StandardCharsets.ISO_8859_1;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * A small HTTP/1.1 reverse proxy on 127.0.0.1 for fault-injection tests and latency benchmarks:
 * clients talk to {@link #endpoint()}, and every request is either forwarded to the upstream server
 * (an S3Proxy, say) or, with probability {@link Builder#faultRate(double) faultRate} drawn from a
 * seeded {@link Random}, answered by one of the {@link Fault}s. Requests and responses are relayed
 * byte for byte (signatures stay valid), except that the proxy answers {@code Expect:
 * 100-continue} itself and does not pass that header on. A request is read completely before it
 * is forwarded, so a client that dies halfway through a body never reaches the upstream server.
 *
 * <p>Every request is logged as an {@link Exchange}, with the status the upstream server answered
 * if it was forwarded: {@link #exchanges()} is what really reached the server, whatever the client
 * saw. Requests are served one connection per thread; a fixed {@link Builder#latency(Duration)
 * latency} is added before each request is answered or forwarded (per request, not per packet:
 * TCP handshakes and bandwidth are not affected, unlike {@code tc netem}).
 *
 * <p>Binds to 127.0.0.1 only. Thread-safe; {@link #faultRate(double)} and {@link
 * #latency(Duration)} may be changed while it runs.
 */
public final class FaultyHttpProxy implements AutoCloseable {

    /** What a faulty answer does. */
    public enum Fault {
        /** Answers 500 InternalError; the request is not forwarded. */
        SERVER_ERROR,
        /** Answers 503 SlowDown; the request is not forwarded. */
        SLOW_DOWN,
        /** Answers nothing for the {@link Builder#stall stall time}, then closes; not forwarded. */
        STALL,
        /** Resets the connection (TCP RST) instead of answering; not forwarded. */
        RESET,
        /**
         * Forwards the request, then resets the connection instead of relaying the answer: the
         * server did the work and the client cannot know — the ambiguous failure.
         */
        RESET_AFTER_FORWARD
    }

    /**
     * One request the proxy received.
     *
     * @param method the HTTP method
     * @param target the request target as sent, e.g. {@code /bucket/key?x-id=PutObject}
     * @param fault the fault injected, if any
     * @param upstreamStatus the status the upstream server answered, or 0 if the request did not
     *     reach it (or it did not answer)
     */
    public record Exchange(String method, String target, Optional<Fault> fault, int upstreamStatus) {

        /** The target without its query string. */
        public String path() {
            int q = target.indexOf('?');
            return q < 0 ? target : target.substring(0, q);
        }

        /** Whether the upstream server answered this request. */
        public boolean reachedUpstream() {
            return upstreamStatus > 0;
        }
    }

    private static final int MAX_HEAD_BYTES = 64 * 1024;

    private final URI upstream;
    private final Random random;
    private final List<Fault> faults;
    private final Duration stall;
    private final Predicate<String> faultable;
    private volatile double faultRate;
    private volatile Duration latency;

    private final ConcurrentLinkedQueue<Exchange> exchanges = new ConcurrentLinkedQueue<>();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final CountDownLatch closed = new CountDownLatch(1);
    private ServerSocket server;
    private ExecutorService pool;

    private FaultyHttpProxy(Builder b) {
        this.upstream = b.upstream;
        this.random = new Random(b.seed);
        this.faults = List.copyOf(b.faults);
        this.stall = b.stall;
        this.faultable = b.faultable;
        this.faultRate = b.faultRate;
        this.latency = b.latency;
    }

    /** A proxy in front of {@code upstream} ({@code http://host:port}) with no faults and no latency. */
    public static Builder to(URI upstream) {
        return new Builder(upstream);
    }

    /**
     * Starts listening on a free port of 127.0.0.1.
     *
     * @return this
     * @throws IllegalStateException if it is already started or cannot bind
     */
    public FaultyHttpProxy start() {
        if (server != null) {
            throw new IllegalStateException("FaultyHttpProxy already started at " + endpoint());
        }
        AtomicInteger threads = new AtomicInteger();
        pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "faulty-proxy-" + threads.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        try {
            server = new ServerSocket(0, 200, InetAddress.getLoopbackAddress());
        } catch (IOException e) {
            throw new IllegalStateException("FaultyHttpProxy cannot listen on 127.0.0.1", e);
        }
        pool.execute(this::acceptLoop);
        return this;
    }

    /** {@code http://127.0.0.1:<port>}. */
    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + port());
    }

    /** The port the proxy listens on. */
    public int port() {
        if (server == null) {
            throw new IllegalStateException("FaultyHttpProxy is not started; call start() first");
        }
        return server.getLocalPort();
    }

    /** Sets the share of requests, from 0 to 1, answered by a fault from now on. */
    public void faultRate(double rate) {
        this.faultRate = checkRate(rate);
    }

    /** Sets the delay added to every request from now on. */
    public void latency(Duration latency) {
        this.latency = checkLatency(latency);
    }

    /** Every request received so far, in the order they were answered (logged before the client can read the answer). */
    public List<Exchange> exchanges() {
        return List.copyOf(exchanges);
    }

    /** Requests received whose exchange is not finished yet (being read, delayed, forwarded, stalled). */
    public int inFlight() {
        return inFlight.get();
    }

    /** Stops listening and closes every connection; stalled and delayed requests end at once. */
    @Override
    public void close() {
        closed.countDown();
        if (server != null) {
            closeQuietly(server);
        }
        for (Socket s : sockets) {
            closeQuietly(s);
        }
        if (pool != null) {
            pool.shutdownNow();
        }
    }

    @Override
    public String toString() {
        return "FaultyHttpProxy[" + (server == null ? "stopped" : endpoint()) + " -> " + upstream + "]";
    }

    private void acceptLoop() {
        while (closed.getCount() > 0) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            sockets.add(client);
            pool.execute(() -> serve(client));
        }
    }

    /** Serves one client connection, request after request, over one upstream connection. */
    private void serve(Socket client) {
        Upstream up = new Upstream();
        try (client) {
            client.setTcpNoDelay(true);
            InputStream in = new BufferedInputStream(client.getInputStream());
            OutputStream out = client.getOutputStream();
            boolean open = true;
            while (open && closed.getCount() > 0) {
                open = exchange(client, in, out, up);
            }
        } catch (IOException e) {
            // the client went away or the proxy closed: nothing to answer
        } finally {
            up.close();
            sockets.remove(client);
        }
    }

    /** Handles one request; returns whether the client connection stays open. */
    private boolean exchange(Socket client, InputStream in, OutputStream out, Upstream up) throws IOException {
        Message request = Message.readHead(in, true);
        if (request == null) {
            return false;
        }
        inFlight.incrementAndGet();
        String method = request.method();
        String target = request.target();
        Fault fault = null;
        int status = 0;
        boolean recorded = false;
        try {
            if (request.expectsContinue()) {
                out.write("HTTP/1.1 100 Continue\r\n\r\n".getBytes(ISO_8859_1));
                out.flush();
            }
            request.readBody(in, false);
            fault = draw(method + " " + target);
            if (!pause(latency)) {
                return false;
            }
            if (fault == null || fault == Fault.RESET_AFTER_FORWARD) {
                Message response = up.forward(request);
                status = response == null ? 0 : response.status();
                // recorded before the client can see the answer or the reset, so a caller that saw it sees
                // the exchange
                recorded = record(method, target, fault, status);
                if (fault == Fault.RESET_AFTER_FORWARD) {
                    reset(client);
                    return false;
                }
                if (response == null) {
                    writeError(out, method, 502, "BadGateway", "the upstream server did not answer");
                    return false;
                }
                response.writeTo(out);
                return !response.closesConnection() && !request.closesConnection();
            }
            if (fault != Fault.STALL) { // a stall is logged when it ends
                recorded = record(method, target, fault, status);
            }
            switch (fault) {
                case SERVER_ERROR -> writeError(out, method, 500, "InternalError", "injected fault");
                case SLOW_DOWN -> writeError(out, method, 503, "SlowDown", "injected fault: reduce your request rate");
                case STALL -> {
                    pause(stall);
                    return false;
                }
                case RESET -> {
                    reset(client);
                    return false;
                }
                default -> throw new IllegalStateException("unhandled fault " + fault);
            }
            return !request.closesConnection();
        } finally {
            if (!recorded) {
                record(method, target, fault, status);
            }
        }
    }

    /** Logs a finished exchange; returns true. */
    private boolean record(String method, String target, Fault fault, int status) {
        exchanges.add(new Exchange(method, target, Optional.ofNullable(fault), status));
        inFlight.decrementAndGet();
        return true;
    }

    private Fault draw(String request) {
        double rate = faultRate;
        if (rate <= 0 || faults.isEmpty() || !faultable.test(request)) {
            return null;
        }
        synchronized (random) {
            return random.nextDouble() < rate ? faults.get(random.nextInt(faults.size())) : null;
        }
    }

    /** Waits unless the proxy closes first; returns false if it closed. */
    private boolean pause(Duration d) {
        if (d.isZero()) {
            return closed.getCount() > 0;
        }
        try {
            return !closed.await(d.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void reset(Socket client) throws IOException {
        client.setSoLinger(true, 0); // close() now sends RST
        client.close();
    }

    /** An S3-style error; the body is left out for HEAD, whose answers never have one. */
    private static void writeError(OutputStream out, String method, int status, String code, String message)
            throws IOException {
        byte[] body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" + message
                        + "</Message><RequestId>faulty-proxy</RequestId></Error>")
                .getBytes(ISO_8859_1);
        String head = "HTTP/1.1 " + status + " " + code + "\r\nContent-Type: application/xml\r\nContent-Length: "
                + body.length + "\r\n\r\n";
        out.write(head.getBytes(ISO_8859_1));
        if (!method.equals("HEAD")) {
            out.write(body);
        }
        out.flush();
    }

    private static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException e) {
            // closing anyway: nothing left to do
        }
    }

    private static double checkRate(double rate) {
        if (!(rate >= 0 && rate <= 1)) {
            throw new IllegalArgumentException("fault rate must be in [0, 1], was " + rate);
        }
        return rate;
    }

    private static Duration checkLatency(Duration d) {
        if (d == null || d.isNegative()) {
            throw new IllegalArgumentException("latency must be zero or positive, was " + d);
        }
        return d;
    }

    /** The connection to the upstream server that serves one client connection, opened on demand. */
    private final class Upstream {
        private Socket socket;
        private InputStream in;
        private boolean reused;

        /** Sends the request and reads the answer; null if the server could not be reached. */
        Message forward(Message request) {
            for (int attempt = 0; attempt < 2; attempt++) {
                try {
                    if (socket == null) {
                        open();
                    }
                    boolean wasReused = reused;
                    reused = true;
                    OutputStream out = socket.getOutputStream();
                    request.writeTo(out);
                    Message response = readResponse(request.method().equals("HEAD"));
                    if (response == null) {
                        close();
                        if (wasReused) {
                            continue; // the server had closed an idle connection: once more on a new one
                        }
                        return null;
                    }
                    if (response.closesConnection()) {
                        close();
                    }
                    return response;
                } catch (IOException e) {
                    close();
                    if (attempt == 1 || closed.getCount() == 0) {
                        return null;
                    }
                }
            }
            return null;
        }

        private Message readResponse(boolean head) throws IOException {
            while (true) {
                Message response = Message.readHead(in, false);
                if (response == null) {
                    return null;
                }
                if (response.status() >= 100 && response.status() < 200) {
                    continue; // interim answer
                }
                boolean bodiless = head || response.status() == 204 || response.status() == 304;
                if (!bodiless) {
                    response.readBody(in, true);
                }
                return response;
            }
        }

        private void open() throws IOException {
            Socket s = new Socket();
            s.connect(new InetSocketAddress(upstream.getHost(), upstream.getPort()), 5_000);
            s.setSoTimeout(60_000);
            s.setTcpNoDelay(true);
            socket = s;
            in = new BufferedInputStream(s.getInputStream());
            reused = false;
            sockets.add(s);
        }

        void close() {
            if (socket != null) {
                sockets.remove(socket);
                closeQuietly(socket);
                socket = null;
                in = null;
            }
        }
    }

    /** An HTTP/1.1 message kept as raw bytes: the start line and headers, and the framed body. */
    private static final class Message {
        private final String startLine;
        private final List<String> headers;
        private byte[] body = new byte[0];
        private boolean closeDelimited;

        private Message(String startLine, List<String> headers) {
            this.startLine = startLine;
            this.headers = headers;
        }

        /** Reads a start line and headers; null on a clean end of stream before the first byte. */
        static Message readHead(InputStream in, boolean request) throws IOException {
            String start = readLine(in, true);
            if (start == null) {
                return null;
            }
            List<String> headers = new ArrayList<>();
            int total = start.length();
            for (String line = readLine(in, false); !line.isEmpty(); line = readLine(in, false)) {
                total += line.length();
                if (total > MAX_HEAD_BYTES) {
                    throw new IOException("HTTP head over " + MAX_HEAD_BYTES + " bytes");
                }
                headers.add(line);
            }
            Message m = new Message(start, headers);
            if (request && start.split(" ").length != 3) {
                throw new IOException("not an HTTP request line: " + start);
            }
            return m;
        }

        String method() {
            return startLine.substring(0, startLine.indexOf(' '));
        }

        String target() {
            String[] parts = startLine.split(" ");
            return parts.length > 1 ? parts[1] : "";
        }

        int status() {
            String[] parts = startLine.split(" ");
            try {
                return Integer.parseInt(parts[1]);
            } catch (RuntimeException e) {
                return 0;
            }
        }

        Optional<String> header(String name) {
            for (String h : headers) {
                int colon = h.indexOf(':');
                if (colon > 0 && h.substring(0, colon).trim().equalsIgnoreCase(name)) {
                    return Optional.of(h.substring(colon + 1).trim());
                }
            }
            return Optional.empty();
        }

        boolean expectsContinue() {
            return header("Expect").map(v -> v.equalsIgnoreCase("100-continue")).orElse(false);
        }

        boolean closesConnection() {
            return closeDelimited
                    || header("Connection")
                            .map(v -> v.toLowerCase(Locale.ROOT).contains("close"))
                            .orElse(false);
        }

        /** Reads the body as framed (chunked, Content-Length or, for responses, until the end of stream). */
        void readBody(InputStream in, boolean response) throws IOException {
            boolean chunked = header("Transfer-Encoding")
                    .map(v -> v.toLowerCase(Locale.ROOT).contains("chunked"))
                    .orElse(false);
            Optional<String> length = header("Content-Length");
            ByteArrayOutputStream raw = new ByteArrayOutputStream();
            if (chunked) {
                while (true) {
                    String sizeLine = readLine(in, false);
                    raw.write((sizeLine + "\r\n").getBytes(ISO_8859_1));
                    int semi = sizeLine.indexOf(';');
                    int size = Integer.parseInt((semi < 0 ? sizeLine : sizeLine.substring(0, semi)).trim(), 16);
                    if (size == 0) {
                        for (String trailer = readLine(in, false); ; trailer = readLine(in, false)) {
                            raw.write((trailer + "\r\n").getBytes(ISO_8859_1));
                            if (trailer.isEmpty()) {
                                break;
                            }
                        }
                        break;
                    }
                    raw.write(in.readNBytes(size));
                    String end = readLine(in, false);
                    if (!end.isEmpty()) {
                        throw new IOException("malformed chunk end: " + end);
                    }
                    raw.write("\r\n".getBytes(ISO_8859_1));
                }
            } else if (length.isPresent()) {
                long n = Long.parseLong(length.get());
                byte[] data = in.readNBytes((int) n);
                if (data.length != n) {
                    throw new EOFException("body ended after " + data.length + " of " + n + " bytes");
                }
                raw.write(data);
            } else if (response) {
                raw.write(in.readAllBytes());
                closeDelimited = true;
            }
            body = raw.toByteArray();
        }

        /** Writes the message as received, minus {@code Expect} (the proxy answered it). */
        void writeTo(OutputStream out) throws IOException {
            StringBuilder head = new StringBuilder(startLine).append("\r\n");
            for (String h : headers) {
                if (!h.regionMatches(true, 0, "Expect:", 0, 7)) {
                    head.append(h).append("\r\n");
                }
            }
            head.append("\r\n");
            out.write(head.toString().getBytes(ISO_8859_1));
            out.write(body);
            out.flush();
        }

        /** A CRLF- (or LF-) terminated line without its terminator; null at a clean end of stream if allowed. */
        private static String readLine(InputStream in, boolean endAllowed) throws IOException {
            StringBuilder line = new StringBuilder();
            while (true) {
                int c = in.read();
                if (c < 0) {
                    if (endAllowed && line.length() == 0) {
                        return null;
                    }
                    throw new EOFException("connection closed in the middle of an HTTP message");
                }
                if (c == '\n') {
                    int len = line.length();
                    if (len > 0 && line.charAt(len - 1) == '\r') {
                        line.setLength(len - 1);
                    }
                    return line.toString();
                }
                line.append((char) c);
                if (line.length() > MAX_HEAD_BYTES) {
                    throw new IOException("HTTP line over " + MAX_HEAD_BYTES + " bytes");
                }
            }
        }
    }

    /** Settings for a {@link FaultyHttpProxy}. */
    public static final class Builder {
        private final URI upstream;
        private long seed = 1;
        private double faultRate;
        private Set<Fault> faults = EnumSet.allOf(Fault.class);
        private Duration stall = Duration.ofSeconds(5);
        private Duration latency = Duration.ZERO;
        private Predicate<String> faultable = request -> true;

        private Builder(URI upstream) {
            this.upstream = Objects.requireNonNull(upstream, "upstream");
            if (upstream.getHost() == null || upstream.getPort() < 0 || !"http".equals(upstream.getScheme())) {
                throw new IllegalArgumentException("upstream must be http://host:port, was " + upstream);
            }
        }

        /** The seed of the random draws deciding which requests fail and how (default 1). */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** The share of requests, from 0 to 1, answered by a fault (default 0). */
        public Builder faultRate(double rate) {
            this.faultRate = checkRate(rate);
            return this;
        }

        /** The faults to choose from, uniformly (default all). */
        public Builder faults(Fault first, Fault... rest) {
            this.faults = EnumSet.of(first, rest);
            return this;
        }

        /** How long a {@link Fault#STALL} holds a request before closing; longer than the client's timeout. */
        public Builder stall(Duration stall) {
            this.stall = checkLatency(stall);
            return this;
        }

        /** A delay added to every request (default none). */
        public Builder latency(Duration latency) {
            this.latency = checkLatency(latency);
            return this;
        }

        /**
         * Which requests may get a fault, tested on {@code "<METHOD> <target>"} (default all); the
         * others are always forwarded.
         */
        public Builder faultOnly(Predicate<String> requests) {
            this.faultable = Objects.requireNonNull(requests, "requests");
            return this;
        }

        /** An unstarted proxy. */
        public FaultyHttpProxy build() {
            return new FaultyHttpProxy(this);
        }
    }
}
