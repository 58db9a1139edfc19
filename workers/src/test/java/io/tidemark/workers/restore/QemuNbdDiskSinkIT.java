package io.tidemark.workers.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.testkit.qemu.DiskModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link QemuNbdDiskSink} with the real qemu-img and qemu-nbd (QEMU 7.2). */
class QemuNbdDiskSinkIT {

    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void concurrentWritesLandInASparseQcow2UnderItsFinalNameOnlyAfterCommit() throws Exception {
        long size = 64L * MIB;
        DiskModel model = new DiskModel(size);
        Path out = dir.resolve("disk.qcow2");
        Random random = new Random(3);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (QemuNbdDiskSink sink = QemuNbdDiskSink.qcow2(out, size)) {
            assertThat(Files.exists(out)).isFalse();
            assertThat(Files.exists(dir.resolve("disk.qcow2.partial"))).isTrue();
            List<CompletableFuture<Void>> writes = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                byte[] data = new byte[256 * 1024];
                random.nextBytes(data);
                long offset = (long) i * 3 * MIB; // 4 MiB of 48 MiB written, in 256 KiB pieces
                model.write(offset, data);
                writes.add(CompletableFuture.runAsync(() -> sink.write(offset, data, data.length), pool));
            }
            CompletableFuture.allOf(writes.toArray(new CompletableFuture<?>[0])).get();
            assertThat(sink.format()).isEqualTo("qcow2");
            assertThat(sink.describe()).isEqualTo(out.toString());
            sink.commit();
        } finally {
            pool.shutdownNow();
        }
        assertThat(Files.exists(dir.resolve("disk.qcow2.partial"))).isFalse();
        Path raw = dir.resolve("check.raw");
        exec("qemu-img", "convert", "-f", "qcow2", "-O", "raw", out.toString(), raw.toString());
        assertThat(DiskModel.sha256(Files.readAllBytes(raw))).isEqualTo(model.sha256());
        assertThat(exec("qemu-img", "info", "--output=json", out.toString()))
                .contains("\"virtual-size\": " + size)
                .contains("\"format\": \"qcow2\"");
        // sparse: only the written 4 MiB (plus metadata) are allocated
        assertThat(Files.size(out)).isLessThan(6L * MIB);
    }

    @Test
    void anAbandonedSinkLeavesNoFile() {
        Path out = dir.resolve("gone.qcow2");
        try (QemuNbdDiskSink sink = QemuNbdDiskSink.qcow2(out, 8L * MIB)) {
            sink.write(0, new byte[] {1, 2, 3}, 3);
        }
        assertThat(Files.exists(out)).isFalse();
        assertThat(Files.exists(dir.resolve("gone.qcow2.partial"))).isFalse();
    }

    @Test
    void aBadDestinationNamesIt() {
        assertThatThrownBy(() -> QemuNbdDiskSink.qcow2(dir.resolve("no/such/dir/x.qcow2"), MIB))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no/such/dir/x.qcow2");
        assertThatThrownBy(() -> QemuNbdDiskSink.rbd("rbd:nopool", MIB))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("rbd:POOL/IMAGE");
        assertThat(QemuNbdDiskSink.redact("rbd:pool/img:conf=/c:key=SECRET")).isEqualTo("rbd:pool/img");
    }

    private static String exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
        return out;
    }
}
