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
 * the image file is kept equal to the newest point. Each round times six paths: {@code cp} of the
 * image file followed by {@code sync FILE} (the restore fsyncs too), restores of the newest and of
 * the first point to a raw file with {@code bench.parallel} fetch threads, with and without the image
 * digest, and the newest point into a raw file flushed only at commit (no background writeback). The order rotates each round and reverses every other round; before each path the
 * previous outputs are deleted and the file system synced, and with {@code -Dbench.cold=true} (root)
 * the page cache is dropped, for {@code cp} alike.
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
        boolean cold = Boolean.getBoolean("bench.cold");
        if (cold && !Files.isWritable(DROP_CACHES)) {
            System.out.println("bench.cold: " + DROP_CACHES + " is not writable (not root?); running warm");
            cold = false;
        }
        Prepare prepare = new Prepare(dir, copy, restored, cold);
        List<Double> cp = new ArrayList<>();
        List<Double> rLast = new ArrayList<>();
        List<Double> rFirst = new ArrayList<>();
        List<Double> rBare = new ArrayList<>();
        List<Double> rFirstBare = new ArrayList<>();
        List<Double> ratioCp = new ArrayList<>();
        List<Double> ratioBareCp = new ArrayList<>();
        List<Double> ratioChain = new ArrayList<>();
        List<Double> ratioChainBare = new ArrayList<>();
        List<Double> rNoWriteback = new ArrayList<>();
        List<Double> ratioWriteback = new ArrayList<>();
        List<Double> cpuCp = new ArrayList<>();
        List<Double> cpuLast = new ArrayList<>();
        List<Double> cpuBare = new ArrayList<>();
        double[] load = new double[repetitions + 1];
        load[0] = loadAverage();
        // warm-up: one restore of each point (JIT, page cache of the repository). Every round then
        // times six paths -- cp, point N and point 1 with the image digest, both without, point N
        // into a sink without background writeback -- each
        // from the same state: the previous outputs deleted and the file system synced (a deleted
        // 1 GiB file's freeing, and any dirty data, are paid before the clock starts, not by
        // whichever path comes next), and with -Dbench.cold=true the page cache dropped. The order
        // rotates by one each round and reverses every other round, so that each path takes each
        // place and follows each other path.
        prepare.run();
        new Restorer(repo, parallel).restoreDisk(last, DISK, restored, Restorer.Progress.NONE);
        prepare.run();
        new Restorer(repo, parallel).restoreDisk(first, DISK, restored, Restorer.Progress.NONE);
        String[] paths = {"cp", "last", "first", "last-bare", "first-bare", "last-no-writeback"};
        for (int round = 0; round < repetitions; round++) {
            List<String> order = new ArrayList<>(List.of(paths));
            Collections.rotate(order, round);
            if (round % 2 == 1) {
                Collections.reverse(order);
            }
            java.util.Map<String, Run> runs = new java.util.HashMap<>();
            for (String path : order) {
                prepare.run();
                runs.put(
                        path,
                        switch (path) {
                            case "cp" -> cp(image, copy, size);
                            case "last" -> restore(repo, last, restored, parallel, imageSha, size, true);
                            case "first" -> restore(repo, first, restored, parallel, null, size, true);
                            case "last-bare" -> restore(repo, last, restored, parallel, null, size, false);
                            case "last-no-writeback" ->
                                restoreWithoutWriteback(repo, last, restored, parallel, imageSha, size);
                            default -> restore(repo, first, restored, parallel, null, size, false);
                        });
            }
            Run c = runs.get("cp");
            Run l = runs.get("last");
            Run f = runs.get("first");
            Run b = runs.get("last-bare");
            Run fb = runs.get("first-bare");
            Run nw = runs.get("last-no-writeback");
            cp.add(c.mibPerSecond());
            rLast.add(l.mibPerSecond());
            rFirst.add(f.mibPerSecond());
            rBare.add(b.mibPerSecond());
            rFirstBare.add(fb.mibPerSecond());
            ratioCp.add(l.mibPerSecond() / c.mibPerSecond());
            ratioBareCp.add(b.mibPerSecond() / c.mibPerSecond());
            ratioChain.add(l.mibPerSecond() / f.mibPerSecond());
            ratioChainBare.add(b.mibPerSecond() / fb.mibPerSecond());
            rNoWriteback.add(nw.mibPerSecond());
            ratioWriteback.add(l.mibPerSecond() / nw.mibPerSecond());
            cpuCp.add(c.cpuSecondsPerGib());
            cpuLast.add(l.cpuSecondsPerGib());
            cpuBare.add(b.cpuSecondsPerGib());
            load[round + 1] = loadAverage();
            System.out.printf(
                    Locale.ROOT,
                    "round %d (%s): cp %.1f MiB/s, restore point %d %.1f MiB/s, point 1 %.1f MiB/s; without"
                            + " image digest: point %d %.1f MiB/s, point 1 %.1f MiB/s; CPU s/GiB: cp %.2f, restore"
                            + " %.2f, without digest %.2f; point %d, flushed only at commit: %.1f MiB/s%n",
                    round + 1,
                    String.join(" ", order),
                    c.mibPerSecond(),
                    points,
                    l.mibPerSecond(),
                    f.mibPerSecond(),
                    points,
                    b.mibPerSecond(),
                    fb.mibPerSecond(),
                    c.cpuSecondsPerGib(),
                    l.cpuSecondsPerGib(),
                    b.cpuSecondsPerGib(),
                    points,
                    nw.mibPerSecond());
        }
        System.out.printf(
                Locale.ROOT,
                "%n%s page cache; %d rounds%n| path | MiB/s (median of %d) | runs |%n| --- | --- | --- |%n",
                cold ? "cold (dropped before every timed path)" : "warm",
                repetitions,
                repetitions);
        row("cp + sync of the image file", cp);
        row("restore of point " + points + " (" + parallel + " fetch threads)", rLast);
        row("restore of point 1, the full (" + parallel + " fetch threads)", rFirst);
        row("restore of point " + points + " without the image digest (`--no-image-sha256`)", rBare);
        row("restore of point 1 without the image digest", rFirstBare);
        row("restore of point " + points + ", raw file flushed only at commit (before issue 15 goal 3)", rNoWriteback);
        System.out.printf(
                Locale.ROOT,
                "%n| CPU seconds per GiB (median) | cp + sync %.2f | restore %.2f | restore without image digest %.2f |%n",
                median(cpuCp),
                median(cpuLast),
                median(cpuBare));
        System.out.printf(
                Locale.ROOT,
                "%nrestore (point %d) / cp: %.2f (per round %s)%nwithout image digest / cp: %.2f (per round %s)%n"
                        + "restore point %d / point 1: %.2f (per round %s); without the digest %.2f (per round %s);"
                        + " within ±10 %%: %s%n",
                points,
                median(ratioCp),
                fmt(ratioCp),
                median(ratioBareCp),
                fmt(ratioBareCp),
                points,
                median(ratioChain),
                fmt(ratioChain),
                median(ratioChainBare),
                fmt(ratioChainBare),
                Math.abs(median(ratioChain) - 1) <= 0.10 && Math.abs(median(ratioChainBare) - 1) <= 0.10
                        ? "yes"
                        : "NO");
        System.out.printf(
                Locale.ROOT,
                "restore point %d with background writeback / flushed only at commit: %.2f (per round %s)%n",
                points,
                median(ratioWriteback),
                fmt(ratioWriteback));
        rss(repoDir, last, dir.resolve("rss.raw"), parallel);
        System.out.printf(
                Locale.ROOT,
                "1-minute load average per round: %s; %d cores; total %.0f s%n",
                fmt(toList(load)),
                Runtime.getRuntime().availableProcessors(),
                (System.nanoTime() - t0) / 1e9);
    }

    private static final Path DROP_CACHES = Path.of("/proc/sys/vm/drop_caches");

    /**
     * What runs before every timed path: the outputs of the previous one deleted, the file system
     * synced ({@code sync -f}), and with {@code cold} the page cache dropped ({@code echo 1 >
     * /proc/sys/vm/drop_caches}, root only; it drops every process's clean page cache, so it is off
     * by default on a shared machine).
     */
    record Prepare(Path dir, Path copy, Path restored, boolean cold) {
        void run() throws IOException, InterruptedException {
            Files.deleteIfExists(copy);
            Files.deleteIfExists(restored);
            exec("sync", "-f", dir.toString());
            if (cold) {
                Files.writeString(DROP_CACHES, "1");
            }
        }
    }

    /** One timed run: its rate and the CPU it cost (user + system, all threads or the child process). */
    record Run(double mibPerSecond, double cpuSecondsPerGib) {}

    private static Run cp(Path from, Path to, long size) throws IOException, InterruptedException {
        Files.deleteIfExists(to);
        long t = System.nanoTime();
        double cpu0 = childrenCpuSeconds();
        exec("cp", from.toString(), to.toString());
        exec("sync", to.toString());
        double secs = (System.nanoTime() - t) / 1e9;
        double cpu = childrenCpuSeconds() - cpu0;
        Files.delete(to);
        return new Run(size / MIB / secs, cpu / (size / MIB / 1024));
    }

    private static Run restore(
            Repository repo, Manifest m, Path out, int parallel, String expectSha, long size, boolean imageDigest)
            throws IOException {
        Files.deleteIfExists(out);
        long t = System.nanoTime();
        double cpu0 = ownCpuSeconds();
        Restorer restorer = new Restorer(repo, parallel);
        Restorer.Result r = (imageDigest ? restorer : restorer.withoutImageDigest())
                .restoreDisk(m, DISK, out, Restorer.Progress.NONE);
        double secs = (System.nanoTime() - t) / 1e9;
        double cpu = ownCpuSeconds() - cpu0;
        if (expectSha != null && !expectSha.equals(r.sha256())) {
            throw new IllegalStateException("restore of " + m.id() + " does not match the image: " + r.sha256());
        }
        Files.delete(out);
        return new Run(size / MIB / secs, cpu / (size / MIB / 1024));
    }

    /** A restore into a raw file whose only flush is the commit's (the sink before issue 15 goal 3). */
    private static Run restoreWithoutWriteback(
            Repository repo, Manifest m, Path out, int parallel, String expectSha, long size) throws IOException {
        Files.deleteIfExists(out);
        long t = System.nanoTime();
        double cpu0 = ownCpuSeconds();
        Restorer.Result r;
        try (RawFileSink sink = RawFileSink.create(out, size, Long.MAX_VALUE)) {
            r = new Restorer(repo, parallel).restore(m, DISK, sink, Restorer.Progress.NONE);
        }
        double secs = (System.nanoTime() - t) / 1e9;
        double cpu = ownCpuSeconds() - cpu0;
        if (!expectSha.equals(r.sha256())) {
            throw new IllegalStateException("restore of " + m.id() + " does not match the image: " + r.sha256());
        }
        Files.delete(out);
        return new Run(size / MIB / secs, cpu / (size / MIB / 1024));
    }

    /** This process's CPU time (user + system), from /proc/self/stat. */
    private static double ownCpuSeconds() throws IOException {
        String[] f = procSelfStat();
        return (Long.parseLong(f[13]) + Long.parseLong(f[14])) / 100.0;
    }

    /** CPU time of this process's reaped children (user + system), from /proc/self/stat. */
    private static double childrenCpuSeconds() throws IOException {
        String[] f = procSelfStat();
        return (Long.parseLong(f[15]) + Long.parseLong(f[16])) / 100.0;
    }

    /** Fields of /proc/self/stat from the state on (index 2 is the state; clock ticks are 1/100 s). */
    private static String[] procSelfStat() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] rest = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        String[] f = new String[rest.length + 2];
        System.arraycopy(rest, 0, f, 2, rest.length);
        return f;
    }

    /**
     * Peak RSS of a restore on its own: a child JVM with the launcher's default options ({@code
     * -Xmx1g}, see dist/bin/tidemark) restores the newest point with default settings and reports
     * its VmHWM.
     */
    private static void rss(Path repoDir, Manifest m, Path out, int parallel) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(
                        java,
                        "-Xmx1g",
                        "-cp",
                        System.getProperty("java.class.path"),
                        RestoreBench.class.getName() + "$Child",
                        repoDir.toString(),
                        m.id(),
                        out.toString(),
                        Integer.toString(parallel))
                .redirectErrorStream(true)
                .start();
        String output = new String(p.getInputStream().readAllBytes()).strip();
        if (p.waitFor() != 0) {
            throw new IOException("the restore child failed: " + output);
        }
        System.out.println(output);
        Files.deleteIfExists(out);
    }

    /** The child of {@link #rss}: restores one point to a raw file, then prints its peak RSS. */
    public static final class Child {
        private Child() {}

        public static void main(String[] args) throws IOException {
            Repository repo = Repository.open(new FileObjectTarget(Path.of(args[0])));
            Manifest m = repo.manifest(VM, args[1]).orElseThrow();
            long t = System.nanoTime();
            new Restorer(repo, Integer.parseInt(args[3]))
                    .restoreDisk(m, DISK, Path.of(args[2]), Restorer.Progress.NONE);
            double secs = (System.nanoTime() - t) / 1e9;
            String hwm = Files.readAllLines(Path.of("/proc/self/status")).stream()
                    .filter(l -> l.startsWith("VmHWM"))
                    .findFirst()
                    .orElse("VmHWM: ?");
            System.out.printf(
                    Locale.ROOT,
                    "restore alone in a JVM with -Xmx1g, default settings (%d MiB of buffers at most): %.1f s, peak RSS %s%n",
                    Restorer.DEFAULT_MEMORY_BYTES >> 20,
                    secs,
                    hwm.replaceAll("\\s+", " ").replace("VmHWM: ", ""));
        }
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
