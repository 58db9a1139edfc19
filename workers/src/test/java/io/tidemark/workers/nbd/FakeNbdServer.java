package io.tidemark.workers.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A tiny in-process NBD server over a Unix socket that behaves in the awkward ways a real one may:
 * read replies come as a hole chunk first and then data chunks in reverse order, block status
 * covers at most {@link #STATUS_LIMIT} bytes per reply, and reads at {@link #BAD_OFFSET} fail with
 * an error chunk. Holes are every odd 64 KiB block; data bytes are {@link #expected(long)}.
 */
final class FakeNbdServer implements AutoCloseable {

    static final long SIZE = 8L << 20;
    static final long BLOCK = 65536;
    static final long STATUS_LIMIT = 3 * BLOCK + 4096;
    static final long BAD_OFFSET = 5 * BLOCK;
    static final String EXPORT = "disk";
    static final String DIRTY = "qemu:dirty-bitmap:tm-1";

    private final ServerSocketChannel server;
    private final Thread thread;
    private final Map<String, Integer> contexts = new LinkedHashMap<>();
    private volatile boolean dropAfterNextRequest;
    private volatile boolean stall;
    private volatile SocketChannel client;

    FakeNbdServer(Path socket) throws IOException {
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(socket));
        thread = new Thread(this::serve, "fake-nbd");
        thread.setDaemon(true);
        thread.start();
    }

    static byte expected(long pos) {
        return isHole(pos) ? 0 : (byte) (1 + (pos / 4096) % 251);
    }

    static boolean isHole(long pos) {
        return (pos / BLOCK) % 2 == 1;
    }

    /** Requests from now on are read and never answered, the connection kept open (QEMU stopped). */
    void stallFromNow() {
        stall = true;
    }

    /** The next request is answered by closing the connection. */
    void dropAfterNextRequest() {
        dropAfterNextRequest = true;
    }

    private void serve() {
        try {
            while (server.isOpen()) {
                try (SocketChannel ch = server.accept()) {
                    client = ch;
                    contexts.clear();
                    if (handshake(ch)) {
                        transmission(ch);
                    }
                } catch (EOFException e) {
                    // client went away
                }
            }
        } catch (IOException e) {
            if (server.isOpen()) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private boolean handshake(SocketChannel ch) throws IOException {
        write(
                ch,
                ByteBuffer.allocate(18)
                        .putLong(0x4e42444d41474943L)
                        .putLong(0x49484156454F5054L)
                        .putShort((short) 3));
        read(ch, 4);
        while (true) {
            ByteBuffer h = read(ch, 16);
            h.getLong();
            int opt = h.getInt();
            ByteBuffer data = read(ch, h.getInt());
            switch (opt) {
                case 8 -> reply(ch, opt, 1, new byte[0]);
                case 10 -> {
                    String name = str(data, data.getInt());
                    int n = data.getInt();
                    for (int i = 0; i < n; i++) {
                        String q = str(data, data.getInt());
                        int id = q.equals("base:allocation") ? 7 : q.equals(DIRTY) ? 9 : -1;
                        if (id >= 0 && name.equals(EXPORT)) {
                            contexts.put(q, id);
                            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
                            reply(
                                    ch,
                                    opt,
                                    4,
                                    ByteBuffer.allocate(4 + qb.length)
                                            .putInt(id)
                                            .put(qb)
                                            .array());
                        }
                    }
                    reply(ch, opt, 1, new byte[0]);
                }
                case 7 -> {
                    String name = str(data, data.getInt());
                    if (!name.equals(EXPORT)) {
                        reply(ch, opt, 0x80000006, "unknown export".getBytes(StandardCharsets.UTF_8));
                        return false;
                    }
                    reply(
                            ch,
                            opt,
                            3,
                            ByteBuffer.allocate(12)
                                    .putShort((short) 0)
                                    .putLong(SIZE)
                                    .putShort((short) 0x58f)
                                    .array());
                    reply(
                            ch,
                            opt,
                            3,
                            ByteBuffer.allocate(14)
                                    .putShort((short) 3)
                                    .putInt(1)
                                    .putInt(4096)
                                    .putInt(32 << 20)
                                    .array());
                    reply(ch, opt, 1, new byte[0]);
                    return true;
                }
                default -> reply(ch, opt, 0x80000001, new byte[0]);
            }
        }
    }

    private void transmission(SocketChannel ch) throws IOException {
        while (true) {
            ByteBuffer r = read(ch, 28);
            r.getInt();
            r.getShort();
            int type = r.getShort();
            long handle = r.getLong();
            long offset = r.getLong();
            int length = r.getInt();
            if (dropAfterNextRequest) {
                ch.close();
                return;
            }
            if (stall) {
                continue;
            }
            switch (type) {
                case 0 -> read(ch, handle, offset, length);
                case 2 -> {
                    return;
                }
                case 7 -> status(ch, handle, offset, length);
                default ->
                    chunk(
                            ch,
                            1,
                            0x8001,
                            handle,
                            ByteBuffer.allocate(6)
                                    .putInt(22)
                                    .putShort((short) 0)
                                    .array());
            }
        }
    }

    private void read(SocketChannel ch, long handle, long offset, int length) throws IOException {
        if (offset <= BAD_OFFSET && BAD_OFFSET < offset + length) {
            byte[] msg = "injected".getBytes(StandardCharsets.UTF_8);
            chunk(
                    ch,
                    0,
                    0x8002,
                    handle,
                    ByteBuffer.allocate(14 + msg.length)
                            .putInt(5)
                            .putShort((short) msg.length)
                            .put(msg)
                            .putLong(BAD_OFFSET)
                            .array());
            chunk(ch, 1, 0, handle, new byte[0]);
            return;
        }
        // split into runs of equal hole-ness; send holes first, then data runs in reverse order
        List<long[]> holes = new ArrayList<>();
        List<long[]> data = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long runEnd = Math.min(end, (pos / BLOCK + 1) * BLOCK);
            (isHole(pos) ? holes : data).add(new long[] {pos, runEnd - pos});
            pos = runEnd;
        }
        for (long[] h : holes) {
            chunk(
                    ch,
                    0,
                    2,
                    handle,
                    ByteBuffer.allocate(12).putLong(h[0]).putInt((int) h[1]).array());
        }
        for (int i = data.size() - 1; i >= 0; i--) {
            long[] d = data.get(i);
            ByteBuffer p = ByteBuffer.allocate(8 + (int) d[1]).putLong(d[0]);
            for (long x = d[0]; x < d[0] + d[1]; x++) {
                p.put(expected(x));
            }
            chunk(ch, 0, 1, handle, p.array());
        }
        chunk(ch, 1, 0, handle, new byte[0]);
    }

    private void status(SocketChannel ch, long handle, long offset, int length) throws IOException {
        long end = offset + Math.min(length, STATUS_LIMIT);
        for (Map.Entry<String, Integer> c : contexts.entrySet()) {
            ByteBuffer p = ByteBuffer.allocate(4 + 8 * (int) ((end - offset) / BLOCK + 2))
                    .putInt(c.getValue());
            long pos = offset;
            while (pos < end) {
                long runEnd = Math.min(end, (pos / BLOCK + 1) * BLOCK);
                int flags = c.getKey().equals(DIRTY) ? (pos / BLOCK % 3 == 0 ? 1 : 0) : (isHole(pos) ? 3 : 0);
                p.putInt((int) (runEnd - pos)).putInt(flags);
                pos = runEnd;
            }
            byte[] payload = new byte[p.position()];
            p.flip().get(payload);
            chunk(ch, 0, 5, handle, payload);
        }
        chunk(ch, 1, 0, handle, new byte[0]);
    }

    private static void chunk(SocketChannel ch, int flags, int type, long handle, byte[] payload) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(20 + payload.length);
        b.putInt(0x668e33ef)
                .putShort((short) flags)
                .putShort((short) type)
                .putLong(handle)
                .putInt(payload.length)
                .put(payload);
        write(ch, b);
    }

    private static void reply(SocketChannel ch, int opt, int type, byte[] data) throws IOException {
        write(
                ch,
                ByteBuffer.allocate(20 + data.length)
                        .putLong(0x3e889045565a9L)
                        .putInt(opt)
                        .putInt(type)
                        .putInt(data.length)
                        .put(data));
    }

    private static String str(ByteBuffer b, int len) {
        byte[] s = new byte[len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private static ByteBuffer read(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException();
            }
        }
        return b.flip();
    }

    private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
        b.flip();
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        SocketChannel c = client;
        if (c != null) {
            c.close();
        }
    }
}
