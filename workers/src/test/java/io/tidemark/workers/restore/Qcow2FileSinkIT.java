package io.tidemark.workers.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.testkit.qemu.DiskModel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Qcow2FileSink}: the qcow2 files it writes, checked with the real {@code qemu-img} (QEMU 7.2):
 * {@code check} finds no error nor leak, {@code convert} back to raw gives the bytes written, and
 * clusters of zeros are not allocated.
 */
class Qcow2FileSinkIT {

    private static final int MIB = 1 << 20;
    private static final int KIB = 1 << 10;

    @TempDir
    Path dir;

    @Test
    void concurrentWritesLandInACleanSparseQcow2UnderItsFinalNameOnlyAfterCommit() throws Exception {
        long size = 1536L * MIB; // three L2 tables, the middle one never written
        Path reference = dir.resolve("reference.raw"); // the same writes into a sparse raw file
        Path out = dir.resolve("disk.qcow2");
        Random random = new Random(3);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<long[]> at = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            at.add(new long[] {(long) i * 3 * MIB}); // 6 MiB in the first 72 MiB, in 256 KiB pieces
        }
        at.add(new long[] {size - 256 * KIB}); // the last chunk of the disk
        at.add(new long[] {1100L * MIB}); // in the third L2 table
        try (Qcow2FileSink sink = Qcow2FileSink.create(out, size, 2 * MIB);
                FileChannel ref =
                        FileChannel.open(reference, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ref.write(ByteBuffer.wrap(new byte[1]), size - 1);
            assertThat(Files.exists(out)).isFalse();
            assertThat(Files.exists(dir.resolve("disk.qcow2.partial"))).isTrue();
            List<CompletableFuture<Void>> writes = new ArrayList<>();
            for (long[] o : at) {
                byte[] data = new byte[256 * KIB];
                random.nextBytes(data);
                ref.write(ByteBuffer.wrap(data), o[0]);
                writes.add(CompletableFuture.runAsync(() -> sink.write(o[0], data, data.length), pool));
            }
            CompletableFuture.allOf(writes.toArray(new CompletableFuture<?>[0])).get();
            assertThat(sink.format()).isEqualTo("qcow2");
            assertThat(sink.describe()).isEqualTo(out.toString());
            sink.commit(); // waits for a background writeback still running
            assertThat(sink.writebacks()).isPositive();
        } finally {
            pool.shutdownNow();
        }
        assertThat(Files.exists(dir.resolve("disk.qcow2.partial"))).isFalse();
        assertThat(exec("qemu-img", "check", out.toString())).contains("No errors were found");
        assertThat(exec("qemu-img", "info", "--output=json", out.toString()))
                .contains("\"virtual-size\": " + size)
                .contains("\"format\": \"qcow2\"");
        assertThat(exec("qemu-img", "compare", "-f", "raw", "-F", "qcow2", reference.toString(), out.toString()))
                .contains("Images are identical");
        // sparse: only the written 6.5 MiB plus metadata
        assertThat(Files.size(out)).isLessThan(7L * MIB);
    }

    @Test
    void clustersOfZerosAreNotAllocatedAndPartialClustersShareTheirHostCluster() throws Exception {
        long size = 8L * MIB + 1024; // the last cluster is partial (QEMU counts whole sectors)
        DiskModel model = new DiskModel(size);
        Path out = dir.resolve("zeros.qcow2");
        try (Qcow2FileSink sink = Qcow2FileSink.create(out, size)) {
            // a chunk whose middle two 64 KiB clusters are zeros: two clusters allocated
            byte[] chunk = new byte[256 * KIB];
            Random random = new Random(7);
            random.nextBytes(chunk);
            java.util.Arrays.fill(chunk, 64 * KIB, 192 * KIB, (byte) 0);
            model.write(MIB, chunk);
            sink.write(MIB, chunk, chunk.length);
            // a chunk of zeros only: nothing allocated
            sink.write(2L * MIB, new byte[256 * KIB], 256 * KIB);
            // two writes into one cluster: one host cluster
            byte[] a = {1, 2, 3};
            byte[] b = {4, 5};
            model.write(4L * MIB, a);
            model.write(4L * MIB + 100, b);
            sink.write(4L * MIB, a, a.length);
            sink.write(4L * MIB + 100, b, b.length);
            // the partial last cluster
            byte[] tail = new byte[1024];
            random.nextBytes(tail);
            model.write(8L * MIB, tail);
            sink.write(8L * MIB, tail, tail.length);
            sink.commit();
        }
        assertThat(exec("qemu-img", "check", out.toString())).contains("No errors were found");
        assertThat(rawSha256(out)).isEqualTo(model.sha256());
        String map = exec("qemu-img", "map", "--output=json", out.toString());
        // allocated data: 64 KiB at 1 MiB, 64 KiB at 1.1875 MiB, one cluster at 4 MiB, the tail
        assertThat(allocatedDataBytes(map)).isEqualTo(3L * 64 * KIB + 1024);
    }

    @Test
    void anAbandonedSinkLeavesNoFile() {
        Path out = dir.resolve("gone.qcow2");
        try (Qcow2FileSink sink = Qcow2FileSink.create(out, 8L * MIB)) {
            sink.write(0, new byte[] {1, 2, 3}, 3);
        }
        assertThat(Files.exists(out)).isFalse();
        assertThat(Files.exists(dir.resolve("gone.qcow2.partial"))).isFalse();
    }

    @Test
    void aBadDestinationNamesIt() {
        assertThatThrownBy(() -> Qcow2FileSink.create(dir.resolve("no/such/dir/x.qcow2"), MIB))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no/such/dir/x.qcow2");
    }

    /** Bytes that {@code qemu-img map} reports as data (allocated, not zero). */
    private static long allocatedDataBytes(String mapJson) {
        long total = 0;
        for (String entry : mapJson.split("\\}")) {
            if (entry.contains("\"data\": true")) {
                String len = entry.replaceAll("(?s).*\"length\": (\\d+).*", "$1");
                total += Long.parseLong(len);
            }
        }
        return total;
    }

    private String rawSha256(Path qcow2) throws Exception {
        Path raw = dir.resolve(qcow2.getFileName() + ".raw");
        exec("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
        String sha = DiskModel.sha256(Files.readAllBytes(raw));
        Files.delete(raw);
        return sha;
    }

    private static String exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
        return out;
    }
}
