package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.RepositoryConfig;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bounded memory: a full backup of a 100 GiB sparse qcow2 (a few MiB allocated), exported by
 * qemu-nbd, runs in a child JVM with a 64 MiB heap, reads only the allocated chunks, and takes about
 * as long as the same data on a 1 GiB disk: time and memory follow the allocated data, not the size.
 */
class SparseDiskBackupIT {

    private static final long MIB = 1 << 20;
    private static final long GIB = 1L << 30;
    private static final int CHUNK = RepositoryConfig.defaults().chunkSize();

    @TempDir
    Path dir;

    @Test
    void aHundredGibSparseDiskBacksUpReadingOnlyItsDataInBoundedHeap() throws Exception {
        long[] small = probe("small", GIB);
        long[] huge = probe("huge", 100 * GIB);
        System.out.printf(
                "1 GiB: %d ms, peak heap %d MiB; 100 GiB: %d ms, peak heap %d MiB%n",
                small[2], small[3] >> 20, huge[2], huge[3] >> 20);
        long allocated = 8 * 2 * MIB;
        for (long[] r : List.of(small, huge)) {
            assertThat(r[0]).as("bytes read").isEqualTo(allocated);
            assertThat(r[1]).as("chunks read").isEqualTo(allocated / CHUNK);
            assertThat(r[3]).as("peak heap").isLessThan(64 * MIB);
        }
        // the time (100x the size, the same data) is not asserted here: a wall-clock figure on a
        // loaded machine; the bench measures it (Bench scenario 3, full and incremental backup of a
        // large sparse disk). Reading only the allocated bytes, asserted above, is what bounds it.
    }

    /** Creates the disk with 8 × 2 MiB of distinct data spread over it, backs it up in a child JVM. */
    private long[] probe(String name, long size) throws Exception {
        Path image = dir.resolve(name + ".qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", image.toString(), Long.toString(size));
        List<String> io = new ArrayList<>(List.of("qemu-io", "-f", "qcow2", image.toString()));
        for (int i = 0; i < 8; i++) {
            long at = size / 8 * i + i * MIB; // misaligned with the 1/8 boundaries, aligned to chunks
            io.addAll(List.of("-c", "write -q -P 0x" + Integer.toHexString(0x10 + i) + " " + at + " " + 2 * MIB));
        }
        run(io.toArray(String[]::new));
        assertThat(Files.size(image)).isLessThan(64 * MIB); // sparse indeed
        Path socket = dir.resolve(name + ".sock");
        Process nbd = new ProcessBuilder(
                        "qemu-nbd", "-r", "-t", "-f", "qcow2", "-x", name, "-k", socket.toString(), image.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + "-nbd.log").toFile())
                .start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                assertThat(nbd.isAlive()).as("qemu-nbd running").isTrue();
                assertThat(System.nanoTime()).as("qemu-nbd listening in time").isLessThan(deadline);
                Thread.onSpinWait();
            }
            Path repo = Files.createDirectories(dir.resolve(name + "-repo"));
            Path out = dir.resolve(name + ".out");
            Process child = new ProcessBuilder(
                            Path.of(System.getProperty("java.home"), "bin", "java")
                                    .toString(),
                            "-Xmx64m",
                            "-cp",
                            System.getProperty("java.class.path"),
                            SparseBackupProbe.class.getName(),
                            socket.toString(),
                            name,
                            repo.toString())
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .start();
            boolean done = child.waitFor(5, TimeUnit.MINUTES);
            if (!done) {
                child.destroyForcibly();
            }
            String text = Files.readString(out, StandardCharsets.UTF_8);
            assertThat(done && child.exitValue() == 0)
                    .as("child JVM output:\n%s", text)
                    .isTrue();
            String[] last =
                    text.strip().lines().reduce((a, b) -> b).orElseThrow().split(" ");
            long[] r = new long[4];
            for (int i = 0; i < 4; i++) {
                r[i] = Long.parseLong(last[i]);
            }
            return r;
        } finally {
            nbd.destroy();
            nbd.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(new File("/dev/null")))
                .start();
        assertThat(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0)
                .as(String.join(" ", cmd))
                .isTrue();
    }
}
