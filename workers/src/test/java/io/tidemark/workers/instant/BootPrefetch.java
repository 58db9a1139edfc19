package io.tidemark.workers.instant;

import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.guest.CheckGuest;
import io.tidemark.workers.guest.TinyGuest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Time to a booted guest from an instant restore out of a <b>remote</b> repository, with and without
 * the boot-read prefetch ({@link BootReads}), in the same run: the sparse 1, 8 and 32 GiB points of
 * {@link InstantRestoreSizeBench} in S3 (S3Proxy in this JVM) behind a {@link FaultyHttpProxy} that
 * adds {@code bench.latencyMs} (default 30) ms to every request. Per size, {@code bench.rounds}
 * (default 2) rounds of two boots, alternating which goes first: <b>no prefetch</b> ({@code
 * --boot-reads=record}: on demand only; the very first boot records the trace) and <b>prefetch</b>
 * (the trace of an earlier boot of the same point fetched while the guest starts). Each boot is a
 * fresh {@link InstantRestore#start} (cold cache) and the tiny guest (q35, TCG) until its agent
 * lists the mounted disk. Run by {@link InstantRestoreSizeBench} when {@code bench.latencyMs} is
 * set; see docs/benchmarks.md section 13.1.
 */
final class BootPrefetch {

    private static final long GIB = 1L << 30;
    private static final int MIB = 1 << 20;

    /**
     * What the guest does with its disk besides mounting and listing it (default: read every file,
     * as a boot loads its programs; {@code -Dbench.guestReads=none} for mount and list only).
     */
    private static final String AND_THEN =
            System.getProperty("bench.guestReads", "files").equals("none") ? "" : " && cat /mnt/data-* > /dev/null";

    private BootPrefetch() {}

    record Boot(
            String mode, double seconds, double mibFetched, long demand, long prefetched, long hits, double waited) {}

    static void main(String[] args) throws Exception {
        int latencyMs = Integer.getInteger("bench.latencyMs", 30);
        int rounds = Integer.getInteger("bench.rounds", 2);
        List<Path> k = TinyGuest.build();
        CheckGuest.Kernel kernel = new CheckGuest.Kernel(k.get(0), k.get(1));
        System.out.printf(Locale.ROOT, "load average at start: %s%n", InstantRestoreSizeBench.loadAverage());
        List<String> table = new ArrayList<>();
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                FaultyHttpProxy proxy =
                        FaultyHttpProxy.to(s3.endpoint()).build().start()) {
            s3.createBucket("bench");
            for (String g : System.getProperty("bench.gib", "1,8,32").split(",")) {
                long size = Long.parseLong(g.trim()) * GIB;
                Path dir = Files.createTempDirectory(Path.of("/tmp"), "tm-bp");
                proxy.latency(Duration.ZERO);
                try (S3ObjectTarget target = S3ObjectTarget.create(
                        S3TargetSpec.builder()
                                .endpoint(proxy.endpoint())
                                .region(s3.region())
                                .bucket("bench")
                                .prefix("size-" + g.trim() + "/")
                                .pathStyle(true)
                                .build(),
                        S3Credentials.of(s3.accessKey(), s3.secretKey()))) {
                    table.add(run(dir, size, target, proxy, latencyMs, rounds, kernel));
                } finally {
                    FileTrees.delete(dir);
                }
            }
        }
        System.out.printf(Locale.ROOT, "load average at end: %s%n", InstantRestoreSizeBench.loadAverage());
        System.out.println();
        System.out.println("| point | no prefetch: booted (s) | prefetch: booted (s) | no prefetch / prefetch |"
                + " no prefetch: reads waited (s) | prefetch: reads waited (s) |"
                + " fetched on demand (chunks): without / with | prefetched (chunks) |");
        System.out.println("| --- | --- | --- | --- | --- | --- | --- | --- |");
        table.forEach(System.out::println);
    }

    private static String run(
            Path dir,
            long size,
            S3ObjectTarget target,
            FaultyHttpProxy proxy,
            int latencyMs,
            int rounds,
            CheckGuest.Kernel kernel)
            throws Exception {
        Path raw = InstantRestoreSizeBench.sparseExt4(dir, size);
        Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
        long[] stored = new long[2];
        Manifest point = InstantRestoreSizeBench.commitSparse(repo, raw, size, stored);
        Files.delete(raw);
        proxy.latency(Duration.ofMillis(latencyMs));
        System.out.printf(
                Locale.ROOT,
                "%d GiB point in S3 behind %d ms per request: %d chunks with data (%.1f MiB); load %s%n",
                size / GIB,
                latencyMs,
                stored[0],
                stored[1] / (double) MIB,
                InstantRestoreSizeBench.loadAverage());
        // opening the export reads the disk's index: its pages one at a time, or 8 at a time
        for (int threads : new int[] {1, 8}) {
            long o0 = System.nanoTime();
            RestorePointExport.open(repo, point, TinyGuest.DISK, new RestorePointExport.Options(256L << 20, 8, threads))
                    .close();
            System.out.printf(
                    Locale.ROOT,
                    "%d GiB: index read (%d pages) with %d thread(s): %.3f s%n",
                    size / GIB,
                    (size / repo.config().chunkSize() + repo.config().entriesPerPage() - 1)
                            / repo.config().entriesPerPage(),
                    threads,
                    (System.nanoTime() - o0) / 1e9);
        }
        List<Boot> without = new ArrayList<>();
        List<Boot> with = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            boolean prefetchFirst = r % 2 == 1;
            for (int i = 0; i < 2; i++) {
                boolean prefetch = (i == 0) == prefetchFirst;
                Boot b = boot(dir.resolve("b" + r + i), repo, point, prefetch, kernel);
                (prefetch ? with : without).add(b);
                System.out.printf(
                        Locale.ROOT,
                        "%d GiB round %d %-11s: booted in %.2f s; reads waited %.3f s for the repository; %.1f MiB"
                                + " fetched, %d chunks on demand, %d prefetched, %d reads served by the prefetch;"
                                + " load %s%n",
                        size / GIB,
                        r + 1,
                        b.mode(),
                        b.seconds(),
                        b.waited(),
                        b.mibFetched(),
                        b.demand(),
                        b.prefetched(),
                        b.hits(),
                        InstantRestoreSizeBench.loadAverage());
            }
        }
        if (without.isEmpty()) {
            return "| " + size / GIB + " GiB | (no boots) |";
        }
        double a = median(without, Boot::seconds);
        double p = median(with, Boot::seconds);
        double wa = median(without, Boot::waited);
        double wp = median(with, Boot::waited);
        return String.format(
                Locale.ROOT,
                "| %d GiB | %.2f | %.2f | **%.2f×** | %.3f | %.3f | %s / %s | %s |",
                size / GIB,
                a,
                p,
                a / p,
                wa,
                wp,
                without.stream().map(b -> Long.toString(b.demand())).toList(),
                with.stream().map(b -> Long.toString(b.demand())).toList(),
                with.stream().map(b -> Long.toString(b.prefetched())).toList());
    }

    private static Boot boot(Path dir, Repository repo, Manifest point, boolean prefetch, CheckGuest.Kernel kernel)
            throws Exception {
        InstantRestore.Options o = InstantRestore.Options.defaults()
                .withBootReads(BootReads.Options.defaults()
                        .withMode(prefetch ? BootReads.Mode.PREFETCH : BootReads.Mode.RECORD));
        Files.createDirectories(dir);
        long t0 = System.nanoTime();
        try (InstantRestore ir = InstantRestore.start(repo, point, TinyGuest.DISK, dir.resolve("ir"), o)) {
            double s = InstantRestoreSizeBench.boot(
                    kernel, Files.createDirectories(dir.resolve("g")), ir.overlay(), t0, AND_THEN);
            RestorePointExport e = ir.export();
            return new Boot(
                    prefetch ? "prefetch" : "no prefetch",
                    s,
                    e.bytesFetched() / (double) MIB,
                    e.demandFetches(),
                    e.tracePrefetched(),
                    e.tracePrefetchHits(),
                    e.readWait().toNanos() / 1e9);
        }
    }

    private static double median(List<Boot> boots, java.util.function.ToDoubleFunction<Boot> f) {
        double[] s = boots.stream().mapToDouble(f).sorted().toArray();
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
