package io.tidemark.workers.nbd;

import static io.tidemark.workers.nbd.FakeNbdServer.BAD_OFFSET;
import static io.tidemark.workers.nbd.FakeNbdServer.BLOCK;
import static io.tidemark.workers.nbd.FakeNbdServer.DIRTY;
import static io.tidemark.workers.nbd.FakeNbdServer.EXPORT;
import static io.tidemark.workers.nbd.FakeNbdServer.SIZE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NbdClientTest {

    @TempDir
    Path dir;

    private FakeNbdServer server;
    private Path socket;

    @BeforeEach
    void start() throws IOException {
        socket = dir.resolve("nbd.sock");
        server = new FakeNbdServer(socket);
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
    }

    private NbdClient connect() {
        return NbdClient.connect(socket, EXPORT, List.of(NbdClient.BASE_ALLOCATION, DIRTY));
    }

    @Test
    void aServerThatStopsAnsweringFailsPendingReadsWithinTheTimeoutAndSaysQemuMayBeStopped() {
        try (NbdClient c =
                NbdClient.connect(socket, EXPORT, List.of(NbdClient.BASE_ALLOCATION), Duration.ofMillis(500))) {
            assertThat(c.read(0, 4096)).hasSize(4096);
            server.stallFromNow();
            long t0 = System.nanoTime();
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThatThrownBy(() -> c.read(0, 4096))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(socket.toString())
                    .hasMessageContaining("stopped")
                    .hasMessageContaining("hung"));
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
            // and the connection is done for: later requests fail at once
            assertThatThrownBy(() -> c.read(0, 4096)).isInstanceOf(RetriableException.class);
        }
    }

    @Test
    void aHandshakeWithAServerThatAcceptsButNeverAnswersGivesUpWithinTheTimeout() throws IOException {
        Path mute = dir.resolve("mute.sock");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(mute), 1);
            List<SocketChannel> queued = new ArrayList<>();
            try {
                for (int i = 0; i < 2; i++) { // fill the backlog; nobody accepts: connect() would block
                    SocketChannel q = SocketChannel.open(StandardProtocolFamily.UNIX);
                    q.connect(UnixDomainSocketAddress.of(mute));
                    queued.add(q);
                }
                long t0 = System.nanoTime();
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThatThrownBy(
                                () -> NbdClient.connect(mute, EXPORT, List.of(), Duration.ofMillis(500)))
                        .isInstanceOf(RetriableException.class)
                        .hasMessageContaining(mute.toString()));
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
            } finally {
                for (SocketChannel q : queued) {
                    q.close();
                }
            }
        }
    }

    @Test
    void negotiatesSizeAndContexts() {
        try (NbdClient c = connect()) {
            assertThat(c.size()).isEqualTo(SIZE);
            assertThat(c.metaContexts()).containsEntry("base:allocation", 7).containsEntry(DIRTY, 9);
            assertThat(c.maxRequestLength()).isEqualTo(32 << 20);
        }
    }

    @Test
    void readsAssembleOutOfOrderDataAndHoleChunks() {
        try (NbdClient c = connect()) {
            long offset = 40_000;
            int length = (int) (4 * BLOCK + 12_345);
            assertThat(c.read(offset, length)).isEqualTo(expected(offset, length));
        }
    }

    @Test
    void aReadIntoAReusedBufferZeroFillsHolesAndLeavesTheRestOfTheBufferAlone() {
        try (NbdClient c = connect()) {
            long offset = 40_000;
            int length = (int) (4 * BLOCK + 12_345);
            byte[] buf = new byte[length + 20];
            java.util.Arrays.fill(buf, (byte) 0x5a); // what an earlier chunk left behind
            c.readAsync(offset, length, buf, 10).join();
            assertThat(java.util.Arrays.copyOfRange(buf, 10, 10 + length)).isEqualTo(expected(offset, length));
            assertThat(java.util.Arrays.copyOfRange(buf, 0, 10)).containsOnly((byte) 0x5a);
            assertThat(java.util.Arrays.copyOfRange(buf, 10 + length, buf.length))
                    .containsOnly((byte) 0x5a);
        }
    }

    @Test
    void parallelReadsMatchTheirOwnRanges() {
        try (NbdClient c = connect()) {
            List<CompletableFuture<byte[]>> reads = new ArrayList<>();
            int piece = 96 * 1024;
            long start = 6 * BLOCK; // past the injected error
            for (int i = 0; i < 40; i++) {
                reads.add(c.readAsync(start + (long) i * piece, piece));
            }
            for (int i = 0; i < reads.size(); i++) {
                assertThat(reads.get(i).join()).isEqualTo(expected(start + (long) i * piece, piece));
            }
        }
    }

    @Test
    void blockStatusLoopsOverShortRepliesAndMergesAdjacentExtents() {
        try (NbdClient c = connect()) {
            List<Extent> alloc = c.blockStatus(NbdClient.BASE_ALLOCATION, 1000, 10 * BLOCK);
            assertThat(alloc.get(0).offset()).isEqualTo(1000);
            assertThat(alloc.get(alloc.size() - 1).end()).isEqualTo(1000 + 10 * BLOCK);
            for (int i = 0; i < alloc.size(); i++) {
                Extent e = alloc.get(i);
                assertThat(e.hole()).isEqualTo(FakeNbdServer.isHole(e.offset()));
                if (i > 0) {
                    assertThat(e.offset()).isEqualTo(alloc.get(i - 1).end());
                    assertThat(e.flags()).isNotEqualTo(alloc.get(i - 1).flags());
                }
            }
            // dirty: blocks 0, 3, 6, 9 of 0..11; clean runs 1-2, 4-5, 7-8, 10-11 are merged across replies
            List<Extent> dirty = c.blockStatus(DIRTY, 0, 12 * BLOCK);
            assertThat(dirty)
                    .containsExactly(
                            new Extent(0, BLOCK, 1),
                            new Extent(BLOCK, 2 * BLOCK, 0),
                            new Extent(3 * BLOCK, BLOCK, 1),
                            new Extent(4 * BLOCK, 2 * BLOCK, 0),
                            new Extent(6 * BLOCK, BLOCK, 1),
                            new Extent(7 * BLOCK, 2 * BLOCK, 0),
                            new Extent(9 * BLOCK, BLOCK, 1),
                            new Extent(10 * BLOCK, 2 * BLOCK, 0));
        }
    }

    @Test
    void aServerErrorFailsOnlyThatRequestAndNamesTheRange() {
        try (NbdClient c = connect()) {
            assertThatThrownBy(() -> c.read(BAD_OFFSET - 100, 4096))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("offset " + (BAD_OFFSET - 100))
                    .hasMessageContaining("length 4096")
                    .hasMessageContaining("injected");
            assertThat(c.read(0, 4096)).isEqualTo(expected(0, 4096));
        }
    }

    @Test
    void aLostConnectionIsRetriableForPendingAndLaterRequests() {
        try (NbdClient c = connect()) {
            server.dropAfterNextRequest();
            CompletableFuture<byte[]> pending = c.readAsync(0, 4096);
            assertThatThrownBy(pending::join)
                    .isInstanceOf(CompletionException.class)
                    .hasCauseInstanceOf(RetriableException.class);
            assertThatThrownBy(() -> c.read(0, 4096))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(socket.toString());
        }
    }

    @Test
    void anUnknownExportOrContextIsPermanent() {
        assertThatThrownBy(() -> NbdClient.connect(socket, "nope", List.of()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no export named 'nope'");
        assertThatThrownBy(() -> NbdClient.connect(socket, EXPORT, List.of("qemu:dirty-bitmap:other")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("qemu:dirty-bitmap:other");
    }

    @Test
    void aMissingSocketIsRetriableAndNamesThePath() {
        Path missing = dir.resolve("missing.sock");
        assertThatThrownBy(() -> NbdClient.connect(missing, EXPORT, List.of()))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(missing.toString());
    }

    @Test
    void rangesOutsideTheExportAreRejected() {
        try (NbdClient c = connect()) {
            assertThatThrownBy(() -> c.read(SIZE - 10, 11)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> c.blockStatus("base:allocation:nope", 0, 10))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    private static byte[] expected(long offset, int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = FakeNbdServer.expected(offset + i);
        }
        return b;
    }
}
