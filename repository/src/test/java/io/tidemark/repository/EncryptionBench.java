package io.tidemark.repository;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Encryption overhead: backs up (putChunk on 2 threads, as the pipeline does) and restores (the
 * {@link Restorer}, 2 fetch threads, to a sparse file) one mixed disk image into an in-memory
 * repository, unencrypted and encrypted, in alternating order, several rounds, and prints each
 * path's MiB/s and the encrypted/plain ratios (median of the per-round ratios). A {@code main} in
 * test scope, not a test: nothing asserts on time. See docs/benchmarks.md.
 *
 * <p>The image: per 256 KiB chunk, 40 % random (incompressible), 40 % text-like (compressible
 * about 4:1), 20 % zeros (never stored). Settings: {@code -Dbench.mib=512 -Dbench.rounds=3}.
 */
public final class EncryptionBench {

    private static final int CHUNK = FormatConstants.DEFAULT_CHUNK_SIZE;
    private static final String VM = "bench";

    private EncryptionBench() {}

    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 512);
        int rounds = Integer.getInteger("bench.rounds", 3);
        int chunks = mib * (1 << 20) / CHUNK;
        Path tmp = Files.createTempDirectory("tidemark-encbench");
        System.out.printf(
                Locale.ROOT,
                "encryption bench: %d MiB mixed image (%d chunks of %d KiB), %d rounds + 1 warm-up, 2 threads%n",
                mib,
                chunks,
                CHUNK / 1024,
                rounds);
        // the image is made once, so its generation is not measured
        byte[][] image = new byte[chunks][];
        for (int c = 0; c < chunks; c++) {
            image[c] = new byte[CHUNK];
            fill(image[c], c);
        }
        List<double[]> plain = new ArrayList<>();
        List<double[]> enc = new ArrayList<>();
        try {
            for (int r = -1; r < rounds; r++) {
                boolean encryptedFirst = r % 2 != 0;
                double[] a = run(encryptedFirst, image, tmp);
                double[] b = run(!encryptedFirst, image, tmp);
                if (r >= 0) {
                    plain.add(encryptedFirst ? b : a);
                    enc.add(encryptedFirst ? a : b);
                }
                System.out.printf(
                        Locale.ROOT,
                        "round %s: plain put %.1f MiB/s (%.2f CPU s/GiB) restore %.1f MiB/s (%.2f)"
                                + " | encrypted put %.1f MiB/s (%.2f) restore %.1f MiB/s (%.2f)"
                                + " | stored plain %d, encrypted %d bytes%n",
                        r < 0 ? "warm-up" : String.valueOf(r + 1),
                        (encryptedFirst ? b : a)[0],
                        (encryptedFirst ? b : a)[3],
                        (encryptedFirst ? b : a)[1],
                        (encryptedFirst ? b : a)[4],
                        (encryptedFirst ? a : b)[0],
                        (encryptedFirst ? a : b)[3],
                        (encryptedFirst ? a : b)[1],
                        (encryptedFirst ? a : b)[4],
                        (long) (encryptedFirst ? b : a)[2],
                        (long) (encryptedFirst ? a : b)[2]);
            }
        } finally {
            Files.deleteIfExists(tmp.resolve("restored.raw"));
            Files.deleteIfExists(tmp);
        }
        System.out.println();
        System.out.println(
                "| measure | plain (median) | encrypted (median) | encrypted / plain (median of per-round ratios) |");
        System.out.println("| --- | --- | --- | --- |");
        for (int i = 0; i < 4; i++) {
            int k = i < 2 ? i : i + 1;
            double[] ratios = new double[plain.size()];
            for (int r = 0; r < ratios.length; r++) {
                ratios[r] = enc.get(r)[k] / plain.get(r)[k];
            }
            System.out.printf(
                    Locale.ROOT,
                    "| %s | %.2f | %.2f | **%.2f** (%s) |%n",
                    switch (i) {
                        case 0 -> "backup (putChunk + index + commit), MiB/s";
                        case 1 -> "restore (Restorer to a file), MiB/s";
                        case 2 -> "backup, CPU seconds per GiB";
                        default -> "restore, CPU seconds per GiB";
                    },
                    median(plain.stream().mapToDouble(x -> x[k]).toArray()),
                    median(enc.stream().mapToDouble(x -> x[k]).toArray()),
                    median(ratios),
                    String.join(
                            ", ",
                            java.util.Arrays.stream(ratios)
                                    .mapToObj(x -> String.format(Locale.ROOT, "%.2f", x))
                                    .toList()));
        }
        System.out.printf(Locale.ROOT, "load average at the end: %.2f%n", loadAverage());
    }

    /** CPU time of the whole process so far, in seconds: robust to other work on a shared machine. */
    private static double cpuSeconds() {
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime() / 1e9;
    }

    /**
     * One backup and one restore; returns {put MiB/s, restore MiB/s, bytes stored, put CPU s/GiB,
     * restore CPU s/GiB}.
     */
    private static double[] run(boolean encrypted, byte[][] image, Path tmp) throws Exception {
        int chunks = image.length;
        RepositoryConfig config = RepositoryConfig.defaults();
        InMemoryObjectTarget target = new InMemoryObjectTarget(encrypted ? "encrypted" : "plain");
        Repository repo = encrypted
                ? Repository.openOrInit(
                        target,
                        config,
                        Passphrase.of("bench passphrase", "bench"),
                        FormatConstants.DEFAULT_KDF_ITERATIONS)
                : Repository.openOrInit(target, config);
        long size = (long) chunks * CHUNK;
        AtomicLong stored = new AtomicLong();
        System.gc();
        long t0 = System.nanoTime();
        double c0 = cpuSeconds();
        var index = repo.newIndex(size, Optional.empty());
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<?>> parts = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                int first = t;
                parts.add(pool.submit(() -> {
                    for (int c = first; c < chunks; c += 2) {
                        Repository.StoredChunk s = repo.putChunk(image[c], CHUNK);
                        stored.addAndGet(s.storedBytes());
                        index.set(c, s.digest());
                    }
                    return null;
                }));
            }
            for (Future<?> f : parts) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        Digest root = index.finish();
        Instant now = Instant.parse("2026-11-24T00:00:00Z");
        Manifest m = new Manifest(
                1,
                "20261124T000000.000Z-000000",
                VM,
                "h",
                "j",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "p",
                Optional.empty(),
                List.of(new DiskEntry("sda", size, CHUNK, root.hex(), "c", Optional.empty(), size, 0)));
        repo.commit(m);
        double put = mibPerSecond(size, System.nanoTime() - t0);
        double putCpu = cpuSeconds() - c0;

        Path out = tmp.resolve("restored.raw");
        long t1 = System.nanoTime();
        double c1 = cpuSeconds();
        new Restorer(repo, 2).restoreDisk(m, "sda", out, Restorer.Progress.NONE);
        double restore = mibPerSecond(size, System.nanoTime() - t1);
        double restoreCpu = cpuSeconds() - c1;
        Files.delete(out);
        double gib = size / (double) (1L << 30);
        return new double[] {put, restore, stored.get(), putCpu / gib, restoreCpu / gib};
    }

    /** Chunk {@code c} of the image: 40 % random, 40 % text-like, 20 % zeros; deterministic. */
    static void fill(byte[] buf, int c) {
        int kind = Math.floorMod(c * 7919, 10);
        Random r = new Random(c);
        if (kind < 4) {
            r.nextBytes(buf);
        } else if (kind < 8) {
            String[] words = {"tidemark ", "backup ", "chunk ", "qemu ", "restore ", "kafka ", "policy ", "disk "};
            int i = 0;
            while (i < buf.length) {
                byte[] w = words[r.nextInt(words.length)].getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                int n = Math.min(w.length, buf.length - i);
                System.arraycopy(w, 0, buf, i, n);
                i += n;
            }
        } else {
            java.util.Arrays.fill(buf, (byte) 0);
        }
    }

    private static double mibPerSecond(long bytes, long nanos) {
        return bytes / (double) (1 << 20) / (nanos / 1e9);
    }

    private static double median(double[] xs) {
        double[] s = xs.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }
}
