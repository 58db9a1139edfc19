package io.tidemark.workers.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.testkit.qemu.DiskModel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Against {@code qemu-nbd -r -t} serving a qcow2 written with {@code qemu-io}. */
class NbdClientIT {

    private static final long MIB = 1 << 20;
    private static final long SIZE = 48 * MIB;

    @TempDir
    static Path dir;

    private static Process qemuNbd;
    private static Path socket;
    private static final DiskModel model = new DiskModel(SIZE);

    @BeforeAll
    static void serve() throws IOException {
        Path image = dir.resolve("disk.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), Long.toString(SIZE));
        run(
                "qemu-io",
                "-f",
                "qcow2",
                image.toString(),
                "-c",
                "write -P 0x11 0 1M",
                "-c",
                "write -P 0x22 4M 64k",
                "-c",
                "write -P 0x33 20M 3M",
                "-c",
                "write -P 0x44 40M 8M");
        model.write(0, (int) MIB, 0x11);
        model.write(4 * MIB, 65536, 0x22);
        model.write(20 * MIB, (int) (3 * MIB), 0x33);
        model.write(40 * MIB, (int) (8 * MIB), 0x44);
        socket = dir.resolve("nbd.sock");
        qemuNbd = new ProcessBuilder(
                        "qemu-nbd",
                        "-r",
                        "-t",
                        "--shared=8",
                        "-f",
                        "qcow2",
                        "-x",
                        "disk",
                        "--socket=" + socket,
                        image.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("qemu-nbd.log").toFile())
                .start();
        // qemu-nbd answers once it has opened the image: until then a connection is refused (retriable)
        org.awaitility.Awaitility.await("qemu-nbd answers")
                .atMost(Duration.ofSeconds(10))
                .ignoreException(RetriableException.class)
                .until(() -> {
                    assertThat(qemuNbd.isAlive()).isTrue();
                    try (NbdClient c = NbdClient.connect(socket, "disk", List.of())) {
                        return c.size() == SIZE;
                    }
                });
    }

    @AfterAll
    static void stop() throws InterruptedException {
        if (qemuNbd != null) {
            qemuNbd.destroy();
            if (!qemuNbd.waitFor(10, TimeUnit.SECONDS)) {
                qemuNbd.destroyForcibly();
            }
        }
    }

    @Test
    void handshakeGivesSizeAndContexts() {
        try (NbdClient c = NbdClient.connect(socket, "disk", List.of(NbdClient.BASE_ALLOCATION))) {
            assertThat(c.size()).isEqualTo(SIZE);
            assertThat(c.metaContexts()).containsOnlyKeys(NbdClient.BASE_ALLOCATION);
            assertThat(c.maxRequestLength()).isEqualTo(32 << 20);
        }
    }

    @Test
    void blockStatusShowsWhatWasWrittenAndHolesElsewhere() {
        try (NbdClient c = NbdClient.connect(socket, "disk", List.of(NbdClient.BASE_ALLOCATION))) {
            List<Extent> map = c.blockStatus(NbdClient.BASE_ALLOCATION, 0, SIZE);
            assertThat(map)
                    .containsExactly(
                            new Extent(0, MIB, 0),
                            new Extent(MIB, 3 * MIB, 3),
                            new Extent(4 * MIB, 65536, 0),
                            new Extent(4 * MIB + 65536, 16 * MIB - 65536, 3),
                            new Extent(20 * MIB, 3 * MIB, 0),
                            new Extent(23 * MIB, 17 * MIB, 3),
                            new Extent(40 * MIB, 8 * MIB, 0));
        }
    }

    @Test
    void parallelReadsEqualTheWrittenPatternsAndHolesReadAsZeros() {
        try (NbdClient c = NbdClient.connect(socket, "disk", List.of())) {
            int piece = 256 * 1024;
            List<CompletableFuture<byte[]>> reads = new ArrayList<>();
            for (long off = 0; off < SIZE; off += piece) {
                reads.add(c.readAsync(off, piece));
            }
            byte[] all = new byte[(int) SIZE];
            for (int i = 0; i < reads.size(); i++) {
                System.arraycopy(reads.get(i).join(), 0, all, i * piece, piece);
            }
            assertThat(DiskModel.sha256(all)).isEqualTo(model.sha256());
            assertThat(c.read(2 * MIB, (int) MIB)).containsOnly(0);
        }
    }

    @Test
    void aReadLongerThanOneRequestIsSplit() {
        try (NbdClient c = NbdClient.connect(socket, "disk", List.of())) {
            assertThat(DiskModel.sha256(c.read(0, (int) SIZE))).isEqualTo(model.sha256());
        }
    }

    @Test
    void anUnknownExportIsPermanent() {
        assertThatThrownBy(() -> NbdClient.connect(socket, "nope", List.of()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("nope")
                .hasMessageContaining(socket.toString());
    }

    private static void run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
