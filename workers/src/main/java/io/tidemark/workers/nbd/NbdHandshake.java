package io.tidemark.workers.nbd;

import static io.tidemark.workers.nbd.NbdProtocol.*;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The fixed-newstyle negotiation, run once on the caller's thread. */
final class NbdHandshake {
    final Path socket;
    final String export;
    final SocketChannel ch;
    final Map<String, Integer> contexts = new LinkedHashMap<>();
    long size = -1;
    int transmissionFlags;
    int maxBlock;

    NbdHandshake(Path socket, String export, SocketChannel ch) {
        this.socket = socket;
        this.export = export;
        this.ch = ch;
    }

    NbdHandshake run(List<String> metaContexts) throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18);
        readFully(ch, hello);
        hello.flip();
        if (hello.getLong() != NBDMAGIC || hello.getLong() != IHAVEOPT) {
            throw refused("the server is not a newstyle NBD server");
        }
        int serverFlags = hello.getShort() & 0xffff;
        if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
            throw refused("the server does not speak fixed newstyle");
        }
        int clientFlags = FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES);
        writeAll(ch, ByteBuffer.allocate(4).putInt(clientFlags).flip());

        sendOption(OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
        Reply r = readReply(OPT_STRUCTURED_REPLY);
        if (r.type != REP_ACK) {
            throw refused("the server refused structured replies (reply type " + hex(r.type) + ")");
        }

        if (!metaContexts.isEmpty()) {
            sendOption(OPT_SET_META_CONTEXT, metaContextPayload(metaContexts));
            while (true) {
                r = readReply(OPT_SET_META_CONTEXT);
                if (r.type == REP_ACK) {
                    break;
                } else if (r.type == REP_META_CONTEXT) {
                    int id = r.data.getInt();
                    byte[] name = new byte[r.data.remaining()];
                    r.data.get(name);
                    contexts.put(new String(name, StandardCharsets.UTF_8), id);
                } else {
                    throw refused(replyError("selecting meta contexts " + metaContexts, r));
                }
            }
            List<String> missing = new ArrayList<>(metaContexts);
            missing.removeAll(contexts.keySet());
            if (!missing.isEmpty()) {
                throw refused("the export does not offer the meta context(s) " + missing + " (selected: "
                        + contexts.keySet() + "); was the bitmap exported with the capture?");
            }
        }

        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        ByteBuffer go = ByteBuffer.allocate(4 + name.length + 2 + 2);
        go.putInt(name.length)
                .put(name)
                .putShort((short) 1)
                .putShort((short) INFO_BLOCK_SIZE)
                .flip();
        sendOption(OPT_GO, go);
        while (true) {
            r = readReply(OPT_GO);
            if (r.type == REP_ACK) {
                break;
            } else if (r.type == REP_INFO) {
                int info = r.data.getShort() & 0xffff;
                if (info == INFO_EXPORT) {
                    size = r.data.getLong();
                    transmissionFlags = r.data.getShort() & 0xffff;
                } else if (info == INFO_BLOCK_SIZE) {
                    r.data.getInt();
                    r.data.getInt();
                    maxBlock = r.data.getInt();
                }
            } else if (r.type == REP_ERR_UNKNOWN) {
                throw refused("no export named '" + export + "' (" + r.message() + ")");
            } else {
                throw refused(replyError("opening the export", r));
            }
        }
        if (size < 0) {
            throw refused("the server sent no export size");
        }
        return this;
    }

    /** u32 export-name length, name, u32 query count, then (u32 length, query) per query. */
    private ByteBuffer metaContextPayload(List<String> queries) {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        List<byte[]> qs =
                queries.stream().map(q -> q.getBytes(StandardCharsets.UTF_8)).toList();
        int len = 4 + name.length + 4 + qs.stream().mapToInt(q -> 4 + q.length).sum();
        ByteBuffer b = ByteBuffer.allocate(len);
        b.putInt(name.length).put(name).putInt(qs.size());
        for (byte[] q : qs) {
            b.putInt(q.length).put(q);
        }
        return b.flip();
    }

    private void sendOption(int option, ByteBuffer data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16 + data.remaining());
        b.putLong(IHAVEOPT).putInt(option).putInt(data.remaining()).put(data).flip();
        writeAll(ch, b);
    }

    private Reply readReply(int option) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(20);
        readFully(ch, h);
        h.flip();
        long magic = h.getLong();
        int opt = h.getInt();
        int type = h.getInt();
        long len = h.getInt() & 0xffffffffL;
        if (magic != OPTION_REPLY_MAGIC || opt != option || len > 1 << 20) {
            throw refused("malformed reply to option " + option);
        }
        ByteBuffer data = ByteBuffer.allocate((int) len);
        readFully(ch, data);
        return new Reply(type, data.flip());
    }

    private String replyError(String what, Reply r) {
        return (r.type == REP_ERR_UNSUP ? "the server does not support " : "the server refused ") + what
                + " (reply type " + hex(r.type) + (r.message().isEmpty() ? "" : ": " + r.message()) + ")";
    }

    private PermanentException refused(String why) {
        return new PermanentException("NBD handshake for export '" + export + "' on " + socket + " failed: " + why);
    }

    private static String hex(int v) {
        return "0x" + Integer.toHexString(v);
    }

    private record Reply(int type, ByteBuffer data) {
        String message() {
            if ((type & 0x80000000) == 0) {
                return "";
            }
            return StandardCharsets.UTF_8.decode(data.duplicate()).toString();
        }
    }
}
