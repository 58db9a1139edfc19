package io.tidemark.workers.restore;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.DiskSink;
import io.tidemark.repository.RawFileSink;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Restore into qcow2 through {@code qemu-nbd} ({@link QemuNbdDiskSink}) against restore into a raw
 * file ({@link RawFileSink}) and against {@code qemu-img convert -O qcow2} of the same image, in the
 * same run. Not a test: a {@code main} in test scope; nothing asserts on time.
 *
 * <p>One full restore point of a {@code bench.mib} MiB random (non-sparse) image in a file
 * repository; each round, in an order rotated by one each round and reversed every other round:
 * restore to raw, restore to qcow2 through qemu-nbd, restore to qcow2 written directly ({@link
 * Qcow2FileSink}) with and without the image digest, {@code qemu-img convert} of the image file to
 * qcow2; each from a synced file system ({@code sync -f} after deleting the previous output) and
 * followed by {@code sync FILE}. {@code -Dbench.check=true} also converts the qcow2 written without
 * the digest back to raw and checks its SHA-256 (untimed).
 *
 * <pre>
 * mvn -q -B -o -pl workers -am test-compile dependency:build-classpath \
 *     -Dmdep.outputFile=/tmp/tm-workers-cp.txt -Dmdep.includeScope=test -Dspotless.check.skip=true
 * java -cp workers/target/test-classes:workers/target/classes:$(cat /tmp/tm-workers-cp.txt) \
 *     io.tidemark.workers.restore.RestoreFormatsBench
 * </pre>
 */
public final class RestoreFormatsBench {

    private static final double MIB = 1 << 20;

    private RestoreFormatsBench() {}

    /** Runs the benchmark; settings are system properties. */
    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 1024);
        int repetitions = Integer.getInteger("bench.repetitions", 3);
        int parallel = Integer.getInteger("bench.parallel", 8);
        Path dir = Files.createTempDirectory(
                Path.of(System.getProperty("bench.dir", System.getProperty("java.io.tmpdir"))), "tm-formats-bench-");
        try {
            run(dir, mib, repetitions, parallel);
        } finally {
            FileTrees.delete(dir);
        }
    }

    private static void run(Path dir, int mib, int repetitions, int parallel) throws Exception {
        long t0 = System.nanoTime();
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        long size = (long) mib << 20;
        Path image = dir.resolve("image.raw");
        SplittableRandom random = new SplittableRandom(5);
        byte[] data = new byte[chunk];
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        try (FileChannel img = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (long c = 0; c < size / chunk; c++) {
                random.nextBytes(data);
                index.set(c, repo.putChunk(data, chunk).digest());
                img.write(ByteBuffer.wrap(data), c * chunk);
            }
            img.force(true);
        }
        Instant now = Instant.parse("2026-11-24T00:00:00Z");
        Manifest m = new Manifest(
                1,
                "bench",
                "bench-vm",
                "bench",
                "job",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "bench",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda",
                        size,
                        chunk,
                        index.finish().hex(),
                        "tm",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        0,
                        0)));
        repo.commit(m);
        String sha = Restorer.sha256(image);
        System.out.printf(
                Locale.ROOT, "setup: %d MiB image, one full point, %.1f s%n", mib, (System.nanoTime() - t0) / 1e9);

        Path rawOut = dir.resolve("out.raw");
        Path qcowOut = dir.resolve("out.qcow2");
        Path directOut = dir.resolve("direct.qcow2");
        Path convOut = dir.resolve("conv.qcow2");
        String[] names = {
            "restore to raw (RawFileSink)",
            "restore to qcow2 through qemu-nbd (QemuNbdDiskSink)",
            "restore to qcow2 written directly (Qcow2FileSink)",
            "restore to qcow2 written directly, without the image digest",
            "qemu-img convert -O qcow2 of the image file"
        };
        int paths = names.length;
        List<List<Double>> rates = new ArrayList<>();
        List<List<Double>> cpu = new ArrayList<>();
        for (int k = 0; k < paths; k++) {
            rates.add(new ArrayList<>());
            cpu.add(new ArrayList<>());
        }
        List<Double> nbdVsConv = new ArrayList<>();
        List<Double> directVsConv = new ArrayList<>();
        List<Double> directNoDigestVsConv = new ArrayList<>();
        List<Double> directVsNbd = new ArrayList<>();
        List<Double> load = new ArrayList<>(List.of(loadAverage()));
        // warm-up
        restore(repo, m, () -> QemuNbdDiskSink.qcow2(qcowOut, size), parallel, sha, qcowOut, true);
        restore(repo, m, () -> Qcow2FileSink.create(directOut, size), parallel, sha, directOut, true);
        for (int round = 0; round < repetitions; round++) {
            double[] r = new double[paths];
            for (int j = 0; j < paths; j++) {
                // rotate the order by one each round, reversed every other round
                int k = round % 2 == 0 ? (round + j) % paths : (round + paths - 1 - j) % paths;
                double secs =
                        switch (k) {
                            case 0 ->
                                restore(repo, m, () -> RawFileSink.create(rawOut, size), parallel, sha, rawOut, true);
                            case 1 ->
                                restore(
                                        repo,
                                        m,
                                        () -> QemuNbdDiskSink.qcow2(qcowOut, size),
                                        parallel,
                                        sha,
                                        qcowOut,
                                        true);
                            case 2 ->
                                restore(
                                        repo,
                                        m,
                                        () -> Qcow2FileSink.create(directOut, size),
                                        parallel,
                                        sha,
                                        directOut,
                                        true);
                            case 3 ->
                                restore(
                                        repo,
                                        m,
                                        () -> Qcow2FileSink.create(directOut, size),
                                        parallel,
                                        sha,
                                        directOut,
                                        false);
                            default -> convert(image, convOut);
                        };
                r[k] = size / MIB / secs;
                cpu.get(k).add(lastCpuSeconds / (size / MIB / 1024));
            }
            for (int k = 0; k < paths; k++) {
                rates.get(k).add(r[k]);
            }
            nbdVsConv.add(r[1] / r[4]);
            directVsConv.add(r[2] / r[4]);
            directNoDigestVsConv.add(r[3] / r[4]);
            directVsNbd.add(r[2] / r[1]);
            load.add(loadAverage());
            System.out.printf(
                    Locale.ROOT,
                    "round %d: raw %.1f, qcow2 via qemu-nbd %.1f, qcow2 direct %.1f, direct without digest %.1f,"
                            + " qemu-img convert %.1f MiB/s%n",
                    round + 1,
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4]);
        }
        System.out.printf(Locale.ROOT, "%n| path | MiB/s (median of %d) | runs |%n| --- | --- | --- |%n", repetitions);
        for (int k = 0; k < paths; k++) {
            row(names[k], rates.get(k));
        }
        System.out.printf(Locale.ROOT, "%n| CPU seconds per GiB (this JVM and its children) | median | runs |%n");
        System.out.printf(Locale.ROOT, "| --- | --- | --- |%n");
        for (int k = 0; k < paths; k++) {
            row(names[k], cpu.get(k));
        }
        System.out.printf(
                Locale.ROOT,
                "%nqcow2 via qemu-nbd / qemu-img convert: %.2f (per round %s)%n"
                        + "qcow2 direct / qemu-img convert: %.2f (per round %s)%n"
                        + "qcow2 direct without the image digest / qemu-img convert: %.2f (per round %s)%n"
                        + "qcow2 direct / qcow2 via qemu-nbd: %.2f (per round %s)%n",
                median(nbdVsConv),
                fmt(nbdVsConv),
                median(directVsConv),
                fmt(directVsConv),
                median(directNoDigestVsConv),
                fmt(directNoDigestVsConv),
                median(directVsNbd),
                fmt(directVsNbd));
        System.out.printf(
                Locale.ROOT,
                "1-minute load average per round: %s; total %.0f s%n",
                fmt(load),
                (System.nanoTime() - t0) / 1e9);
    }

    /** Seconds for one restore (sink created, written, committed, synced). */
    private static double restore(
            Repository repo,
            Manifest m,
            Supplier<DiskSink> sinks,
            int parallel,
            String sha,
            Path out,
            boolean imageDigest)
            throws IOException, InterruptedException {
        Files.deleteIfExists(out);
        exec("sync", "-f", out.getParent().toString()); // every path starts from the same synced state
        double cpu0 = cpuSeconds();
        long t = System.nanoTime();
        Restorer.Result r;
        Restorer restorer = new Restorer(repo, parallel);
        try (DiskSink sink = sinks.get()) {
            r = (imageDigest ? restorer : restorer.withoutImageDigest())
                    .restore(m, "sda", sink, Restorer.Progress.NONE);
        }
        exec("sync", out.toString());
        double secs = (System.nanoTime() - t) / 1e9;
        lastCpuSeconds = cpuSeconds() - cpu0;
        if (imageDigest && !r.sha256().equals(sha)) {
            throw new IllegalStateException("restore to " + out + " does not match the image");
        }
        if (!imageDigest && Boolean.getBoolean("bench.check")) {
            checkQcow2(out, sha);
        }
        Files.delete(out);
        return secs;
    }

    /** {@code -Dbench.check=true}: the qcow2 converted back to raw has the image's SHA-256 (untimed). */
    private static void checkQcow2(Path qcow2, String sha) throws IOException, InterruptedException {
        Path raw = qcow2.resolveSibling("check.raw");
        exec("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
        String got = Restorer.sha256(raw);
        Files.delete(raw);
        if (!got.equals(sha)) {
            throw new IllegalStateException(qcow2 + " does not hold the image");
        }
    }

    private static double convert(Path image, Path out) throws IOException, InterruptedException {
        Files.deleteIfExists(out);
        exec("sync", "-f", out.getParent().toString());
        double cpu0 = cpuSeconds();
        long t = System.nanoTime();
        exec("qemu-img", "convert", "-f", "raw", "-O", "qcow2", image.toString(), out.toString());
        exec("sync", out.toString());
        double secs = (System.nanoTime() - t) / 1e9;
        lastCpuSeconds = cpuSeconds() - cpu0;
        Files.delete(out);
        return secs;
    }

    /** CPU seconds of the path timed last: this JVM's and its reaped children's (qemu-nbd, qemu-img, sync). */
    private static double lastCpuSeconds;

    /** User + system CPU seconds of this process and its reaped children, from /proc/self/stat. */
    private static double cpuSeconds() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        // from the state (field 3): utime 14, stime 15, cutime 16, cstime 17; clock ticks of 1/100 s
        return (Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14])) / 100.0;
    }

    private static void exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IOException(String.join(" ", command) + " failed");
        }
    }

    private static double loadAverage() {
        return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
    }

    private static void row(String what, List<Double> runs) {
        System.out.printf(Locale.ROOT, "| %s | %.1f | %s |%n", what, median(runs), fmt(runs));
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }

    private static String fmt(List<Double> xs) {
        return String.join(
                ", ",
                xs.stream().map(x -> String.format(Locale.ROOT, "%.2f", x)).toList());
    }
}
