package io.tidemark.repository;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
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
import java.util.stream.Stream;

/**
 * Restore throughput from a file repository against {@code cp} of the same image in the same run,
 * and restoring the 50th point of a chain against restoring its first (full) point. Not a test: a
 * {@code main} in test scope; nothing asserts on time.
 *
 * <p>A {@code bench.mib} MiB image of random (incompressible, non-sparse) data is stored as a full
 * restore point in a {@link FileObjectTarget} repository (default chunk size), then {@code
 * bench.points - 1} incrementals each rewrite {@code bench.changePercent} % of the chunks at random;
 * the image file is kept equal to the newest point. Each round, in alternating order: {@code cp} of
 * the image file followed by {@code sync FILE} (the restore fsyncs too), a restore of the newest point
 * and a restore of the first point to a raw file with {@code bench.parallel} fetch threads.
 *
 * <pre>
 * mvn -q -B -o -pl repository -am test-compile -Dspotless.check.skip=true
 * mvn -q -B -o -pl repository dependency:build-classpath -Dmdep.outputFile=/tmp/tm-cp.txt -Dmdep.includeScope=test
 * java -cp repository/target/test-classes:repository/target/classes:$(cat /tmp/tm-cp.txt) \
 *     io.tidemark.repository.RestoreBench
 * </pre>
 */
public final class RestoreBench {

    private static final String VM = "bench-vm";
    private static final String DISK = "sda";
    private static final double MIB = 1 << 20;

    private RestoreBench() {}

    /** Runs the benchmark; settings are system properties. */
    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 1024);
        int points = Integer.getInteger("bench.points", 50);
        int changePercent = Integer.getInteger("bench.changePercent", 1);
        int repetitions = Integer.getInteger("bench.repetitions", 3);
        int parallel = Integer.getInteger("bench.parallel", 8);
        Path dir = Files.createTempDirectory(
                Path.of(System.getProperty("bench.dir", System.getProperty("java.io.tmpdir"))), "tm-restore-bench-");
        try {
            run(dir, mib, points, changePercent, repetitions, parallel);
        } finally {
            FileTrees.delete(dir);
        }
    }

    private static void run(Path dir, int mib, int points, int changePercent, int repetitions, int parallel)
            throws Exception {
        long t0 = System.nanoTime();
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        Path image = dir.resolve("image.raw");
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        long size = (long) mib << 20;
        int chunks = (int) (size / chunk);
        SplittableRandom random = new SplittableRandom(11);
        byte[] data = new byte[chunk];
        List<Manifest> chain = new ArrayList<>();
        try (FileChannel img = FileChannel.open(
                image, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            for (int n = 0; n < points; n++) {
                Optional<Manifest> parent = n == 0 ? Optional.empty() : Optional.of(chain.get(n - 1));
                DiskIndexBuilder index = repo.newIndex(
                        size,
                        parent.map(
                                p -> repo.root(Digest.fromHex(p.disks().get(0).index()))));
                List<Integer> changed = new ArrayList<>();
                if (n == 0) {
                    for (int c = 0; c < chunks; c++) {
                        changed.add(c);
                    }
                } else {
                    for (int i = 0; i < Math.max(1, chunks * changePercent / 100); i++) {
                        changed.add(random.nextInt(chunks));
                    }
                }
                for (int c : changed) {
                    random.nextBytes(data);
                    index.set(c, repo.putChunk(data, chunk).digest());
                    ByteBuffer b = ByteBuffer.wrap(data);
                    long pos = (long) c * chunk;
                    while (b.hasRemaining()) {
                        pos += img.write(b, pos);
                    }
                }
                Instant captured = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(3600L * n);
                Manifest m = new Manifest(
                        1,
                        RestorePointIds.next(captured, new java.util.Random(n)),
                        VM,
                        "bench",
                        "job-" + n,
                        captured,
                        captured,
                        ConsistencyAchieved.CRASH,
                        Trigger.manual(),
                        "bench",
                        parent.map(Manifest::id),
                        List.of(new DiskEntry(
                                DISK,
                                size,
                                chunk,
                                index.finish().hex(),
                                "tm-" + n,
                                n == 0
                                        ? Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup"))
                                        : Optional.empty(),
                                0,
                                0)));
                repo.commit(m);
                chain.add(m);
            }
            img.force(true);
        }
        String imageSha = Restorer.sha256(image);
        System.out.printf(
                Locale.ROOT,
                "setup: %d MiB image, %d chunks of %d KiB, %d points (%d %% of chunks rewritten per incremental),"
                        + " repository %.0f MiB on disk, %.1f s%n",
                mib,
                chunks,
                chunk >> 10,
                points,
                changePercent,
                du(repoDir) / MIB,
                (System.nanoTime() - t0) / 1e9);

        Manifest first = chain.get(0);
        Manifest last = chain.get(chain.size() - 1);
        Path copy = dir.resolve("copy.raw");
        Path restored = dir.resolve("restored.raw");
        List<Double> cp = new ArrayList<>();
        List<Double> rLast = new ArrayList<>();
        List<Double> rFirst = new ArrayList<>();
        List<Double> ratioCp = new ArrayList<>();
        List<Double> ratioChain = new ArrayList<>();
        double[] load = new double[repetitions + 1];
        load[0] = loadAverage();
        // warm-up: one restore (JIT, page cache of the repository)
        new Restorer(repo, parallel).restoreDisk(last, DISK, restored, Restorer.Progress.NONE);
        for (int round = 0; round < repetitions; round++) {
            double c;
            double l;
            double f;
            if (round % 2 == 0) {
                c = cp(image, copy, size);
                l = restore(repo, last, restored, parallel, imageSha, size);
                f = restore(repo, first, restored, parallel, null, size);
            } else {
                f = restore(repo, first, restored, parallel, null, size);
                l = restore(repo, last, restored, parallel, imageSha, size);
                c = cp(image, copy, size);
            }
            cp.add(c);
            rLast.add(l);
            rFirst.add(f);
            ratioCp.add(l / c);
            ratioChain.add(l / f);
            load[round + 1] = loadAverage();
            System.out.printf(
                    Locale.ROOT,
                    "round %d: cp %.1f MiB/s, restore point %d %.1f MiB/s, point 1 %.1f MiB/s%n",
                    round + 1,
                    c,
                    points,
                    l,
                    f);
        }
        System.out.printf(Locale.ROOT, "%n| path | MiB/s (median of %d) | runs |%n| --- | --- | --- |%n", repetitions);
        row("cp + sync of the image file", cp);
        row("restore of point " + points + " (" + parallel + " fetch threads)", rLast);
        row("restore of point 1, the full (" + parallel + " fetch threads)", rFirst);
        System.out.printf(
                Locale.ROOT,
                "%nrestore (point %d) / cp: %.2f (per round %s)%nrestore point %d / point 1: %.2f (per round %s)%n",
                points,
                median(ratioCp),
                fmt(ratioCp),
                points,
                median(ratioChain),
                fmt(ratioChain));
        System.out.printf(
                Locale.ROOT,
                "1-minute load average per round: %s; %d cores; total %.0f s%n",
                fmt(toList(load)),
                Runtime.getRuntime().availableProcessors(),
                (System.nanoTime() - t0) / 1e9);
    }

    private static double cp(Path from, Path to, long size) throws IOException, InterruptedException {
        Files.deleteIfExists(to);
        long t = System.nanoTime();
        exec("cp", from.toString(), to.toString());
        exec("sync", to.toString());
        double secs = (System.nanoTime() - t) / 1e9;
        Files.delete(to);
        return size / MIB / secs;
    }

    private static double restore(Repository repo, Manifest m, Path out, int parallel, String expectSha, long size)
            throws IOException {
        Files.deleteIfExists(out);
        long t = System.nanoTime();
        Restorer.Result r = new Restorer(repo, parallel).restoreDisk(m, DISK, out, Restorer.Progress.NONE);
        double secs = (System.nanoTime() - t) / 1e9;
        if (expectSha != null && !expectSha.equals(r.sha256())) {
            throw new IllegalStateException("restore of " + m.id() + " does not match the image: " + r.sha256());
        }
        Files.delete(out);
        return size / MIB / secs;
    }

    private static void exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).inheritIO().start();
        if (p.waitFor() != 0) {
            throw new IOException(String.join(" ", command) + " failed");
        }
    }

    private static long du(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile)
                    .mapToLong(p -> {
                        try {
                            return Files.size(p);
                        } catch (IOException e) {
                            return 0;
                        }
                    })
                    .sum();
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

    private static List<Double> toList(double[] xs) {
        List<Double> out = new ArrayList<>();
        for (double x : xs) {
            out.add(x);
        }
        return out;
    }
}
