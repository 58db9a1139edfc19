package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectCodec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.nbd.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;

/**
 * Where the time of a full backup goes: each stage of the chunk pipeline alone, on one thread
 * (reads: 16 in flight), over the same sample of the test image. A stage's MiB/s is of the bytes
 * it handles; hashing, compression and writes only see non-zero chunks, as in a backup. Writes are
 * measured twice: durable one by one ({@code putIfAbsent}), and deferred then flushed as a backup
 * does ({@code putIfAbsentDeferred} + {@code flush}).
 */
final class Stages {

    private Stages() {}

    static void profile(Path raw, Path socket, String export, long sampleBytes, Path scratch, ObjectNode out)
            throws IOException {
        int chunk = FormatConstants.DEFAULT_CHUNK_SIZE;
        long sample = Math.min(sampleBytes, Files.size(raw)) / chunk * chunk;

        long t0 = System.nanoTime();
        long cpu0 = processCpu();
        Semaphore window = new Semaphore(16);
        java.util.concurrent.ConcurrentLinkedQueue<byte[]> buffers = new java.util.concurrent.ConcurrentLinkedQueue<>();
        try (NbdClient nbd = NbdClient.connect(socket, export, List.of(NbdClient.BASE_ALLOCATION))) {
            List<CompletableFuture<Void>> pending = new ArrayList<>();
            for (long off = 0; off < sample; off += chunk) {
                window.acquireUninterruptibly();
                byte[] pooled = buffers.poll();
                byte[] buf = pooled != null ? pooled : new byte[chunk];
                pending.add(nbd.readAsync(off, chunk, buf, 0).whenComplete((v, e) -> {
                    buffers.add(buf);
                    window.release();
                }));
            }
            pending.forEach(CompletableFuture::join);
        }
        long nbdNanos = System.nanoTime() - t0;
        long nbdCpu = processCpu() - cpu0;
        long zeroCpu = threadCpu();
        int zeroChunks = 0;
        for (long off = 0; off < sample; off += chunk) {
            zeroChunks += allZero(ZEROS) ? 1 : 0;
        }
        zeroCpu = threadCpu() - zeroCpu;

        List<byte[]> data = new ArrayList<>();
        byte[] zero = new byte[chunk];
        // the sample and its encoded copy stay in the heap: an eighth of it at most (a bench run with a
        // small -Xmx measures a backup's resident size), and never more than 128 MiB
        int held = (int) Math.max(16, Math.min(512, Runtime.getRuntime().maxMemory() / 8 / 2 / chunk));
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ)) {
            for (long off = 0; off < sample; off += chunk) {
                ByteBuffer b = ByteBuffer.allocate(chunk);
                while (b.hasRemaining() && ch.read(b, off + b.position()) > 0) {
                    // read on
                }
                if (java.util.Arrays.mismatch(b.array(), zero) >= 0 && data.size() < held) {
                    data.add(b.array());
                }
            }
        }
        long bytes = (long) data.size() * chunk;
        t0 = System.nanoTime();
        long c0 = threadCpu();
        List<Digest> digests = new ArrayList<>();
        for (byte[] d : data) {
            digests.add(Digest.sha256(d, 0, chunk));
        }
        long shaNanos = System.nanoTime() - t0;
        long shaCpu = threadCpu() - c0;
        t0 = System.nanoTime();
        c0 = threadCpu();
        List<byte[]> encoded = new ArrayList<>();
        for (byte[] d : data) {
            encoded.add(ObjectCodec.encode(d, chunk));
        }
        long zstdNanos = System.nanoTime() - t0;
        long zstdCpu = threadCpu() - c0;
        Files.createDirectories(scratch);
        io.tidemark.repository.Repository repo = io.tidemark.repository.Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(scratch.resolve("repo"))),
                io.tidemark.format.RepositoryConfig.defaults());
        c0 = threadCpu();
        for (byte[] d : data) {
            repo.putChunk(d, chunk);
        }
        long putCpu = threadCpu() - c0;
        repo.target().flush();
        FileObjectTarget target = new FileObjectTarget(scratch);
        t0 = System.nanoTime();
        for (int i = 0; i < encoded.size(); i++) {
            String hex = digests.get(i).hex();
            target.putIfAbsent("chunks/" + hex.substring(0, 2) + "/" + hex, encoded.get(i));
        }
        long writeNanos = System.nanoTime() - t0;
        FileObjectTarget batched = new FileObjectTarget(Files.createDirectories(scratch.resolve("batched")));
        t0 = System.nanoTime();
        c0 = threadCpu();
        for (int i = 0; i < encoded.size(); i++) {
            String hex = digests.get(i).hex();
            batched.putIfAbsentDeferred("chunks/" + hex.substring(0, 2) + "/" + hex, encoded.get(i));
        }
        long deferredCpu = threadCpu() - c0;
        batched.flush();
        long batchedNanos = System.nanoTime() - t0;
        String probe = HexFormat.of().toHexDigits(System.nanoTime());
        t0 = System.nanoTime();
        for (int i = 0; i < encoded.size(); i++) {
            target.exists("chunks/" + probe.substring(0, 2) + "/" + probe + i);
        }
        long existsNanos = System.nanoTime() - t0;

        out.put("nbdReadCpuSecondsPerGB", perGB(nbdCpu, sample));
        out.put("zeroCheckCpuSecondsPerGB", perGB(zeroCpu, (long) zeroChunks * chunk));
        out.put("sha256CpuSecondsPerGB", perGB(shaCpu, bytes));
        out.put("zstdCpuSecondsPerGB", perGB(zstdCpu, bytes));
        out.put("putChunkCpuSecondsPerGB", perGB(putCpu, bytes));
        out.put("deferredWriteCpuSecondsPerGB", perGB(deferredCpu, bytes));
        out.put("sampleBytes", sample);
        out.put("nbdReadMiBps", mibps(sample, nbdNanos));
        out.put("nonZeroSampleBytes", bytes);
        out.put("sha256MiBps", mibps(bytes, shaNanos));
        out.put("zstdMiBps", mibps(bytes, zstdNanos));
        out.put("fileWriteMiBps", mibps(bytes, writeNanos));
        out.put("fileWriteBatchedMiBps", mibps(bytes, batchedNanos));
        out.put("fileWriteMsPerChunk", Math.round(writeNanos / 1e6 / Math.max(1, encoded.size()) * 1000) / 1000.0);
        out.put("existsMicrosPerChunk", Math.round(existsNanos / 1e3 / Math.max(1, encoded.size()) * 10) / 10.0);
    }

    private static final byte[] ZEROS = new byte[FormatConstants.DEFAULT_CHUNK_SIZE];

    /** The zero check of a backup (a vectorised compare), on a chunk of zeros: its whole length. */
    private static boolean allZero(byte[] chunk) {
        return java.util.Arrays.mismatch(chunk, ZEROS) < 0;
    }

    private static long threadCpu() {
        return java.lang.management.ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
    }

    private static long processCpu() {
        return ((com.sun.management.OperatingSystemMXBean)
                        java.lang.management.ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static double perGB(long cpuNanos, long bytes) {
        return Math.round(cpuNanos / 1e9 / (bytes / 1e9) * 1000) / 1000.0;
    }

    private static double mibps(long bytes, long nanos) {
        return Math.round(bytes / 1048576.0 / (nanos / 1e9) * 10) / 10.0;
    }
}
