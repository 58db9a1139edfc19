package io.tidemark.testkit.qemu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.UnaryOperator;

/**
 * A QMP socket in front of a VM's real one, for fault drills that must act at an exact step of the
 * system under test: every command line a client sends is first given to {@code beforeForward}
 * (on the connection's own thread, so it may block, for example to make a guest write through
 * {@link QemuVm#write} on the fixture's own monitor), and what it returns (the line itself, or
 * another command to make QEMU refuse a step) is passed on; QEMU's replies and events pass
 * straight back. Each client connection gets its own connection to QEMU.
 */
public final class QmpTap implements AutoCloseable {

    private final Path listen;
    private final Path upstream;
    private final UnaryOperator<String> beforeForward;
    private final ServerSocketChannel server;
    private final List<SocketChannel> open = new CopyOnWriteArrayList<>();
    private volatile boolean closed;

    private QmpTap(Path listen, Path upstream, UnaryOperator<String> beforeForward) throws IOException {
        this.listen = listen;
        this.upstream = upstream;
        this.beforeForward = beforeForward;
        Files.deleteIfExists(listen);
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(listen));
        Thread accept = new Thread(this::acceptLoop, "qmp-tap-accept");
        accept.setDaemon(true);
        accept.start();
    }

    /**
     * Listens on {@code listen} (a path a system under test looks for, such as {@code
     * <qmpDir>/<vm>.qmp}) and forwards to {@code upstream} (the VM's {@link QemuVm#qmpSocket()}).
     */
    public static QmpTap start(Path listen, Path upstream, UnaryOperator<String> beforeForward) {
        try {
            return new QmpTap(listen, upstream, beforeForward);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen on " + listen, e);
        }
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            SocketChannel qemu;
            try {
                qemu = SocketChannel.open(UnixDomainSocketAddress.of(upstream));
            } catch (IOException e) {
                closeQuietly(client);
                continue;
            }
            open.add(client);
            open.add(qemu);
            start("qmp-tap-up", () -> commandsUp(client, qemu));
            start("qmp-tap-down", () -> pump(qemu, client));
        }
    }

    private static void start(String name, Runnable r) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        t.start();
    }

    /** Client to QEMU, line by line, each line shown to {@code beforeForward} first. */
    private void commandsUp(SocketChannel client, SocketChannel qemu) {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        try {
            while (client.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    byte b = buf.get();
                    line.write(b);
                    if (b == '\n') {
                        byte[] bytes = line.toByteArray();
                        line.reset();
                        String passed = beforeForward.apply(new String(bytes, StandardCharsets.UTF_8));
                        writeAll(qemu, ByteBuffer.wrap(passed.getBytes(StandardCharsets.UTF_8)));
                    }
                }
                buf.clear();
            }
        } catch (ClosedChannelException e) {
            // closed by the other direction or by close()
        } catch (IOException e) {
            // the client or QEMU went away
        } finally {
            closeQuietly(client);
            closeQuietly(qemu);
        }
    }

    private static void pump(SocketChannel from, SocketChannel to) {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        try {
            while (from.read(buf) >= 0) {
                buf.flip();
                writeAll(to, buf);
                buf.clear();
            }
        } catch (IOException e) {
            // either side went away
        } finally {
            closeQuietly(from);
            closeQuietly(to);
        }
    }

    private static void writeAll(SocketChannel to, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            to.write(buf);
        }
    }

    private static void closeQuietly(SocketChannel c) {
        try {
            c.close();
        } catch (IOException e) {
            // nothing more to do
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            // nothing more to do
        }
        open.forEach(QmpTap::closeQuietly);
        try {
            Files.deleteIfExists(listen);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
