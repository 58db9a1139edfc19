package io.tidemark.workers.nbd;

import static io.tidemark.workers.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NbdServer} against the project's own {@link NbdClient}, and raw sockets for the rest. */
class NbdServerTest {

    private static final int BLOCK = 64 * 1024;
    private static final int SIZE = 32 * BLOCK;

    @TempDir
    Path dir;

    private final byte[] data = new byte[SIZE];
    private final List<AutoCloseable> open = new ArrayList<>();
    /** Reads touching this block fail, like a corrupt chunk. */
    private volatile int badBlock = -1;

    private final NbdServer.Export export = new NbdServer.Export() {
        @Override
        public String name() {
            return "disk0";
        }

        @Override
        public long size() {
            return SIZE;
        }

        @Override
        public int preferredBlockSize() {
            return BLOCK;
        }

        @Override
        public void read(long offset, byte[] buf, int bufOffset, int length) {
            if (badBlock >= 0 && offset < (badBlock + 1L) * BLOCK && offset + length > (long) badBlock * BLOCK) {
                throw new PermanentException("corrupt object chunks/ab/abcdef for block " + badBlock);
            }
            System.arraycopy(data, (int) offset, buf, bufOffset, length);
        }

        @Override
        public List<Extent> allocation(long offset, long length) {
            // blocks 0-3 are holes, the rest data
            List<Extent> out = new ArrayList<>();
            long holeEnd = 4L * BLOCK;
            if (offset < holeEnd) {
                out.add(new Extent(offset, Math.min(length, holeEnd - offset), Extent.HOLE | Extent.ZERO));
            }
            if (offset + length > holeEnd) {
                long from = Math.max(offset, holeEnd);
                out.add(new Extent(from, offset + length - from, 0));
            }
            return out;
        }
    };

    NbdServerTest() {
        new Random(3).nextBytes(data);
        Arrays.fill(data, 0, 4 * BLOCK, (byte) 0);
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
    }

    private NbdServer server() {
        NbdServer s = NbdServer.unix(dir.resolve("d.sock"), export, 4);
        open.add(s);
        return s;
    }

    private NbdClient client(NbdServer s, String name) {
        NbdClient c = NbdClient.connect(s.socket(), name, List.of(NbdClient.BASE_ALLOCATION));
        open.add(c);
        return c;
    }

    @Test
    void theProjectsClientReadsTheWholeExportAndItsAllocation() {
        NbdServer s = server();
        assertThat(s.uri())
                .isEqualTo("nbd+unix:///disk0?socket=" + dir.resolve("d.sock").toAbsolutePath());
        NbdClient c = client(s, "disk0");
        assertThat(c.size()).isEqualTo(SIZE);
        assertThat(c.metaContexts()).containsOnlyKeys(NbdClient.BASE_ALLOCATION);
        assertThat(c.read(0, SIZE)).isEqualTo(data);
        assertThat(c.read(BLOCK * 5L + 7, 1000)).isEqualTo(Arrays.copyOfRange(data, BLOCK * 5 + 7, BLOCK * 5 + 1007));
        assertThat(c.blockStatus(NbdClient.BASE_ALLOCATION, 0, SIZE))
                .containsExactly(
                        new Extent(0, 4L * BLOCK, Extent.HOLE | Extent.ZERO),
                        new Extent(4L * BLOCK, SIZE - 4L * BLOCK, 0));
        assertThat(s.bytesServed()).isEqualTo(SIZE + 1000);
        assertThat(s.firstReadNanos()).isPositive();
    }

    @Test
    void theEmptyNameIsTheDefaultExportAndAnUnknownNameIsRefused() {
        NbdServer s = server();
        assertThat(client(s, "").read(SIZE - 10, 10)).isEqualTo(Arrays.copyOfRange(data, SIZE - 10, SIZE));
        assertThatThrownBy(() -> client(s, "disk9"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no export named 'disk9'");
    }

    @Test
    void manyClientsWithManyRequestsInFlight() {
        NbdServer s = server();
        List<NbdClient> clients = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            clients.add(client(s, "disk0"));
        }
        Random r = new Random(9);
        List<CompletableFuture<Void>> checks = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            int off = r.nextInt(SIZE);
            int len = 1 + r.nextInt(Math.min(SIZE - off, 3 * BLOCK));
            checks.add(clients.get(i % clients.size()).readAsync(off, len).thenAcceptAsync(got -> assertThat(got)
                    .isEqualTo(Arrays.copyOfRange(data, off, off + len))));
        }
        CompletableFuture.allOf(checks.toArray(CompletableFuture[]::new)).join();
        assertThat(s.reads()).isEqualTo(400);
        assertThat(s.connections()).isEqualTo(4);
    }

    @Test
    void aFailedReadIsAnEioToThatRequestOnlyWithTheCauseInTheMessage() {
        NbdServer s = server();
        NbdClient c = client(s, "disk0");
        badBlock = 7;
        assertThatThrownBy(() -> c.read(7L * BLOCK + 100, 10))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("NBD server error " + EIO)
                .hasMessageContaining("chunks/ab/abcdef");
        assertThat(s.errors()).isEqualTo(1);
        // the connection survives: the next request is answered
        assertThat(c.read(8L * BLOCK, 10)).isEqualTo(Arrays.copyOfRange(data, 8 * BLOCK, 8 * BLOCK + 10));
    }

    @Test
    void oldExportNameOptionSimpleRepliesAndReadOnly() throws IOException {
        NbdServer s = server();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(s.socket()));
            ByteBuffer hello = read(ch, 18);
            assertThat(hello.getLong()).isEqualTo(NBDMAGIC);
            assertThat(hello.getLong()).isEqualTo(IHAVEOPT);
            assertThat(hello.getShort() & FLAG_FIXED_NEWSTYLE).isEqualTo(FLAG_FIXED_NEWSTYLE);
            writeAll(ch, ByteBuffer.allocate(4).putInt(FLAG_FIXED_NEWSTYLE).flip()); // zeroes wanted

            // an unsupported option is refused, the session goes on
            writeAll(ch, option(42, new byte[0]));
            ByteBuffer rep = read(ch, 20);
            assertThat(rep.getLong()).isEqualTo(OPTION_REPLY_MAGIC);
            assertThat(rep.getInt()).isEqualTo(42);
            assertThat(rep.getInt()).isEqualTo(REP_ERR_UNSUP);
            read(ch, rep.getInt());

            writeAll(ch, option(OPT_EXPORT_NAME, "disk0".getBytes(StandardCharsets.UTF_8)));
            ByteBuffer exp = read(ch, 8 + 2 + 124);
            assertThat(exp.getLong()).isEqualTo(SIZE);
            int flags = exp.getShort() & 0xffff;
            assertThat(flags & TFLAG_READ_ONLY).isNotZero();

            // a simple reply to a read
            writeAll(ch, request(CMD_READ, 11, 5L * BLOCK, 4096, 0));
            ByteBuffer r = read(ch, 16);
            assertThat(r.getInt()).isEqualTo(SIMPLE_REPLY_MAGIC);
            assertThat(r.getInt()).isZero();
            assertThat(r.getLong()).isEqualTo(11);
            assertThat(read(ch, 4096).array()).isEqualTo(Arrays.copyOfRange(data, 5 * BLOCK, 5 * BLOCK + 4096));

            // a write is refused with EPERM (its payload is consumed), a read past the end with EINVAL
            ByteBuffer w = ByteBuffer.allocate(28 + 512);
            w.put(request(CMD_WRITE, 12, 0, 512, 0)).position(28 + 512);
            writeAll(ch, w.flip());
            ByteBuffer wr = read(ch, 16);
            wr.getInt();
            assertThat(wr.getInt()).isEqualTo(EPERM);
            writeAll(ch, request(CMD_READ, 13, SIZE - 10, 20, 0));
            ByteBuffer er = read(ch, 16);
            er.getInt();
            assertThat(er.getInt()).isEqualTo(EINVAL);
            assertThat(er.getLong()).isEqualTo(13);

            // block status needs structured replies and a selected context
            writeAll(ch, request(CMD_BLOCK_STATUS, 14, 0, BLOCK, 0));
            ByteBuffer bs = read(ch, 16);
            bs.getInt();
            assertThat(bs.getInt()).isEqualTo(EINVAL);

            writeAll(ch, request(CMD_DISC, 15, 0, 0, 0));
            assertThat(ch.read(ByteBuffer.allocate(1))).isEqualTo(-1);
        }
    }

    @Test
    void listInfoMetaContextListingAndAbort() throws IOException {
        NbdServer s = server();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(s.socket()));
            read(ch, 18);
            writeAll(
                    ch,
                    ByteBuffer.allocate(4)
                            .putInt(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)
                            .flip());

            writeAll(ch, option(OPT_LIST, new byte[0]));
            ByteBuffer server = optionReply(ch, OPT_LIST, REP_SERVER);
            int len = server.getInt();
            byte[] name = new byte[len];
            server.get(name);
            assertThat(new String(name, StandardCharsets.UTF_8)).isEqualTo("disk0");
            optionReply(ch, OPT_LIST, REP_ACK);

            // INFO for an unknown name, then for the export with a block size request
            writeAll(ch, option(OPT_INFO, infoRequest("other")));
            assertThat(StandardCharsets.UTF_8
                            .decode(optionReply(ch, OPT_INFO, REP_ERR_UNKNOWN))
                            .toString())
                    .contains("no export named 'other'");
            writeAll(ch, option(OPT_INFO, infoRequest("disk0")));
            ByteBuffer export = optionReply(ch, OPT_INFO, REP_INFO);
            assertThat(export.getShort()).isEqualTo((short) INFO_EXPORT);
            assertThat(export.getLong()).isEqualTo(SIZE);
            ByteBuffer sizes = optionReply(ch, OPT_INFO, REP_INFO);
            assertThat(sizes.getShort()).isEqualTo((short) INFO_BLOCK_SIZE);
            assertThat(sizes.getInt()).isEqualTo(1);
            assertThat(sizes.getInt()).isEqualTo(BLOCK);
            assertThat(sizes.getInt()).isEqualTo(NbdServer.MAX_REQUEST);
            optionReply(ch, OPT_INFO, REP_ACK);

            // listing meta contexts with no query offers base:allocation
            ByteBuffer q = ByteBuffer.allocate(4 + 5 + 4)
                    .putInt(5)
                    .put("disk0".getBytes(StandardCharsets.UTF_8))
                    .putInt(0);
            writeAll(ch, option(OPT_LIST_META_CONTEXT, q.array()));
            ByteBuffer ctx = optionReply(ch, OPT_LIST_META_CONTEXT, REP_META_CONTEXT);
            ctx.getInt();
            assertThat(StandardCharsets.UTF_8.decode(ctx).toString()).isEqualTo(NbdClient.BASE_ALLOCATION);
            optionReply(ch, OPT_LIST_META_CONTEXT, REP_ACK);

            // SET_META_CONTEXT before structured replies is refused
            writeAll(ch, option(OPT_SET_META_CONTEXT, q.array()));
            optionReply(ch, OPT_SET_META_CONTEXT, REP_ERR_INVALID);

            writeAll(ch, option(OPT_ABORT, new byte[0]));
            optionReply(ch, OPT_ABORT, REP_ACK);
            assertThat(ch.read(ByteBuffer.allocate(1))).isEqualTo(-1);
        }
    }

    @Test
    void blockStatusOfAPartialRangeStartsAtItsOffset() {
        NbdServer s = server();
        NbdClient c = client(s, "disk0");
        assertThat(c.blockStatus(NbdClient.BASE_ALLOCATION, 2L * BLOCK, 4L * BLOCK))
                .containsExactly(
                        new Extent(2L * BLOCK, 2L * BLOCK, Extent.HOLE | Extent.ZERO),
                        new Extent(4L * BLOCK, 2L * BLOCK, 0));
    }

    private static byte[] infoRequest(String name) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + n.length + 2 + 2)
                .putInt(n.length)
                .put(n)
                .putShort((short) 1)
                .putShort((short) INFO_BLOCK_SIZE)
                .array();
    }

    private static ByteBuffer optionReply(SocketChannel ch, int option, int type) throws IOException {
        ByteBuffer h = read(ch, 20);
        assertThat(h.getLong()).isEqualTo(OPTION_REPLY_MAGIC);
        assertThat(h.getInt()).isEqualTo(option);
        assertThat(h.getInt()).as("reply type").isEqualTo(type);
        return read(ch, h.getInt());
    }

    @Test
    void closingStopsServingAndRemovesTheSocket() {
        NbdServer s = server();
        NbdClient c = client(s, "disk0");
        assertThat(c.read(0, 10)).hasSize(10);
        s.close();
        assertThat(Files.exists(dir.resolve("d.sock"))).isFalse();
        assertThatThrownBy(() -> c.read(4L * BLOCK, 10)).isInstanceOf(RetriableException.class);
        assertThatThrownBy(() -> NbdClient.connect(dir.resolve("d.sock"), "disk0", List.of()))
                .isInstanceOf(RetriableException.class);
    }

    private static ByteBuffer option(int option, byte[] data) {
        return ByteBuffer.allocate(16 + data.length)
                .putLong(IHAVEOPT)
                .putInt(option)
                .putInt(data.length)
                .put(data)
                .flip();
    }

    private static ByteBuffer request(int type, long handle, long offset, int length, int flags) {
        return ByteBuffer.allocate(28)
                .putInt(REQUEST_MAGIC)
                .putShort((short) flags)
                .putShort((short) type)
                .putLong(handle)
                .putLong(offset)
                .putInt(length)
                .flip();
    }

    private static ByteBuffer read(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(ch, b);
        return b.flip();
    }
}
