package io.tidemark.testkit.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The fixture's own minimal, synchronous QMP connection (testkit must not depend on the code it
 * tests). Events are skipped. Every read has a deadline, so a hung QEMU fails the test instead of
 * hanging it.
 */
final class MonitorConnection implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path socket;
    private final SocketChannel channel;
    private final Selector selector;
    private final Duration timeout;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).flip();

    private MonitorConnection(Path socket, SocketChannel channel, Selector selector, Duration timeout) {
        this.socket = socket;
        this.channel = channel;
        this.selector = selector;
        this.timeout = timeout;
    }

    /** Connects, reads the greeting and leaves negotiation mode; fails fast when nobody listens. */
    static MonitorConnection open(Path socket, Duration timeout) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ch.configureBlocking(false);
            Selector sel = Selector.open();
            ch.register(sel, SelectionKey.OP_READ);
            MonitorConnection c = new MonitorConnection(socket, ch, sel, timeout);
            JsonNode greeting = c.readMessage();
            if (!greeting.has("QMP")) {
                throw new IOException("no QMP greeting on " + socket + ": " + greeting);
            }
            c.execute("qmp_capabilities", null);
            return c;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Runs a command; returns its {@code return} value; an {@code error} reply is an exception. */
    JsonNode execute(String command, ObjectNode args) {
        ObjectNode msg = JSON.createObjectNode().put("execute", command);
        if (args != null) {
            msg.set("arguments", args);
        }
        try {
            ByteBuffer out = ByteBuffer.wrap((JSON.writeValueAsString(msg) + "\n").getBytes(StandardCharsets.UTF_8));
            while (out.hasRemaining()) {
                channel.write(out);
            }
            while (true) {
                JsonNode reply = readMessage();
                if (reply.has("error")) {
                    throw new IllegalStateException("QMP " + msg + " on " + socket + " failed: " + reply.get("error"));
                }
                if (reply.has("return")) {
                    return reply.get("return");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("QMP " + command + " on " + socket + " failed", e);
        }
    }

    static ObjectNode args() {
        return JSON.createObjectNode();
    }

    private JsonNode readMessage() throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            while (buf.hasRemaining()) {
                byte b = buf.get();
                if (b == '\n') {
                    String text = line.toString(StandardCharsets.UTF_8);
                    line.reset();
                    if (!text.isBlank()) {
                        return JSON.readTree(text);
                    }
                } else {
                    line.write(b);
                }
            }
            long left = (deadline - System.nanoTime()) / 1_000_000;
            if (left <= 0) {
                throw new IOException("no answer on QMP socket " + socket + " within " + timeout);
            }
            selector.select(left);
            selector.selectedKeys().clear();
            buf.clear();
            int n = channel.read(buf);
            buf.flip();
            if (n < 0) {
                throw new IOException("QEMU closed the QMP socket " + socket);
            }
        }
    }

    @Override
    public void close() {
        try {
            selector.close();
            channel.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
