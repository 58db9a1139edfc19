package io.tidemark.replicator;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;
import java.net.URI;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Replication throughput against an in-process S3Proxy (transient back end) and a real single-node
 * Ceph RGW (memstore), printed as ratios to baselines measured in the same run. Not a test: a {@code
 * main} in test scope.
 *
 * <ol>
 *   <li>(a) section {@code s3proxy}: {@code bench.mib} MiB of 256 KiB random chunks replicated to
 *       S3Proxy with window {@code bench.window}, against the raw AWS SDK PutObject rate of the same
 *       objects with as many threads;
 *   <li>(b) section {@code latency}: {@code bench.latencyMib} MiB through a {@link FaultyHttpProxy}
 *       adding {@code bench.latencyMs} ms to every request, with windows 8 and 32 against window 1;
 *   <li>(c) section {@code rgw}: {@code bench.rgwMib} MiB replicated to Ceph RGW ({@link
 *       CephCluster}), against raw PutObject to RGW, and raw PutObject to RGW against raw PutObject
 *       of the same objects to S3Proxy.
 * </ol>
 *
 * <p>{@code bench.sections} (comma-separated, default all three) selects the sections.
 *
 * <p>Run it as docs/benchmarks.md §2 shows: a reactor {@code test-compile} that writes the test
 * class path, then {@code java -cp ...} (no {@code mvn install}, which would replace the snapshot
 * jars other builds on the machine use).
 */
public final class ReplicationBench {

    private static final String BUCKET = "bench";
    private static final String VM = "bench-vm";
    private static final double MIB = 1 << 20;
    private static final List<String> SECTIONS = List.of("s3proxy", "latency", "rgw");
    private static final AtomicInteger PREFIXES = new AtomicInteger();
    /**
     * {@code -Dbench.rawConditional=true}: the raw baseline sends {@code If-None-Match: *} too, as
     * the Replicator's put-if-absent does, to tell the server's cost of the condition apart.
     */
    private static final boolean RAW_CONDITIONAL = Boolean.getBoolean("bench.rawConditional");

    private static final com.sun.management.OperatingSystemMXBean PROCESS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    /**
     * CPU seconds per GiB of chunk data this JVM spent in the last timed run of {@link #replicate}
     * or {@link #rawPuts}: client, and for S3Proxy the server too (RGW's own processes are not
     * counted). Less sensitive to the machine's load than the rate.
     */
    private static double lastCpuPerGiB;
    /**
     * The same CPU seconds per GiB split by thread: the upload threads ({@code replicate-*} or the
     * raw pool's {@code raw-put-*}), the thread that drives the run ({@code main}: reads index
     * pages, hands out uploads, writes config, lease, page, root, manifest), the other Java threads
     * of the JVM, and what no Java thread accounts for (garbage collection, the JIT compiler).
     */
    private static String lastCpuSplit = "";
    /** CPU seconds per GiB the server's own processes (Ceph's) spent in the same timed run. */
    private static double lastDaemonsPerGiB;

    private ReplicationBench() {}

    /** Runs the selected sections and prints the tables; settings are system properties. */
    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 256);
        int window = Integer.getInteger("bench.window", 8);
        int repetitions = Integer.getInteger("bench.repetitions", 5);
        int latencyMib = Integer.getInteger("bench.latencyMib", 32);
        int latencyMs = Integer.getInteger("bench.latencyMs", 50);
        int rgwMib = Integer.getInteger("bench.rgwMib", 128);
        Set<String> sections = sections(System.getProperty("bench.sections", String.join(",", SECTIONS)));

        try (EmbeddedS3 embedded = EmbeddedS3.builder().build().start();
                LoadSampler load = LoadSampler.start()) {
            embedded.createBucket(BUCKET);
            Server s3proxy = Server.of(embedded);
            System.out.printf(
                    Locale.ROOT,
                    "JVM %s, %d cores, S3Proxy (transient) at %s, sections %s%n",
                    Runtime.version(),
                    Runtime.getRuntime().availableProcessors(),
                    s3proxy.endpoint(),
                    sections);
            if (sections.contains("s3proxy")) {
                load.reset();
                throughput(s3proxy, mib, window, repetitions);
                System.out.println(load.report());
            }
            if (sections.contains("latency")) {
                load.reset();
                latency(s3proxy, latencyMib, latencyMs, repetitions);
                System.out.println(load.report());
            }
            if (sections.contains("rgw")) {
                try (CephCluster ceph = CephCluster.start(Files.createTempDirectory("tidemark-bench-ceph"))) {
                    ceph.createBucket(BUCKET, false);
                    load.reset();
                    rgw(s3proxy, Server.of(ceph), rgwMib, window, repetitions);
                    System.out.println(load.report());
                }
            }
        }
    }

    private static Set<String> sections(String property) {
        Set<String> selected = new LinkedHashSet<>();
        for (String name : property.split(",")) {
            String section = name.strip().toLowerCase(Locale.ROOT);
            if (section.isEmpty()) {
                continue;
            }
            if (!SECTIONS.contains(section)) {
                throw new IllegalArgumentException(
                        "unknown section '" + section + "' in bench.sections; known: " + SECTIONS);
            }
            selected.add(section);
        }
        if (selected.isEmpty()) {
            throw new IllegalArgumentException("bench.sections selects nothing; known: " + SECTIONS);
        }
        return selected;
    }

    /**
     * (a): the replicator against raw PutObject of the same objects, same parallelism. The two run
     * back to back in each round, in alternating order, and the ratio is taken per round, so that
     * load from elsewhere on the machine affects both sides of a ratio alike.
     */
    private static void throughput(Server s3, int mib, int window, int repetitions) throws Exception {
        Primary primary = Primary.of(mib);
        List<Double> replicator = new ArrayList<>();
        List<Double> raw = new ArrayList<>();
        List<Double> ratios = new ArrayList<>();
        List<Double> rawCpu = new ArrayList<>();
        List<Double> replicatorCpu = new ArrayList<>();
        List<Double> cpuRatios = new ArrayList<>();
        // one warm-up round, not counted
        for (int round = 0; round <= repetitions; round++) {
            double r;
            double t;
            double rc;
            double tc;
            String rs;
            String ts;
            if (round % 2 == 0) {
                r = rawPuts(s3, s3.endpoint(), primary, window);
                rc = lastCpuPerGiB;
                rs = lastCpuSplit;
                t = replicate(s3, s3.endpoint(), primary, window);
                tc = lastCpuPerGiB;
                ts = lastCpuSplit;
            } else {
                t = replicate(s3, s3.endpoint(), primary, window);
                tc = lastCpuPerGiB;
                ts = lastCpuSplit;
                r = rawPuts(s3, s3.endpoint(), primary, window);
                rc = lastCpuPerGiB;
                rs = lastCpuSplit;
            }
            System.out.printf(
                    Locale.ROOT,
                    "round %d, S3Proxy raw: %.1f MiB/s, CPU s/GiB %.2f = %s%n"
                            + "round %d, S3Proxy Replicator: %.1f MiB/s, CPU s/GiB %.2f = %s%n",
                    round,
                    r,
                    rc,
                    rs,
                    round,
                    t,
                    tc,
                    ts);
            if (round > 0) {
                raw.add(r);
                replicator.add(t);
                ratios.add(t / r);
                rawCpu.add(rc);
                replicatorCpu.add(tc);
                cpuRatios.add(tc / rc);
            }
        }
        System.out.printf(
                Locale.ROOT,
                "%n(a) S3Proxy: %d MiB in %d chunks of 256 KiB, window/threads %d, %d rounds after 1 warm-up%n",
                mib,
                primary.chunkKeys.size(),
                window,
                repetitions);
        System.out.println("| path | MiB/s (median) | runs |");
        System.out.println("| --- | --- | --- |");
        row("raw SDK PutObject, " + window + " threads", raw);
        row("Replicator (Retrying → S3ObjectTarget), window " + window, replicator);
        ratio("Replicator / raw", ratios);
        cpu("raw SDK PutObject (client + S3Proxy)", rawCpu);
        cpu("Replicator (client + S3Proxy)", replicatorCpu);
        ratio("CPU per GiB, Replicator / raw", cpuRatios);
        fixedCost(s3, window, repetitions, median(replicator), mib);
    }

    /** (b): windows 8 and 32 against window 1, every request delayed by the proxy. */
    private static void latency(Server s3, int mib, int latencyMs, int repetitions) throws Exception {
        Primary primary = Primary.of(mib);
        try (FaultyHttpProxy proxy = FaultyHttpProxy.to(s3.endpoint()).build().start()) {
            replicate(s3, proxy.endpoint(), primary, 8); // warm-up without latency
            proxy.latency(Duration.ofMillis(latencyMs));
            int[] windows = {1, 8, 32};
            double[] medians = new double[windows.length];
            List<List<Double>> runs = new ArrayList<>();
            for (int i = 0; i < windows.length; i++) {
                List<Double> r = new ArrayList<>();
                for (int rep = 0; rep < (windows[i] == 1 ? 1 : repetitions); rep++) {
                    r.add(replicate(s3, proxy.endpoint(), primary, windows[i]));
                }
                runs.add(r);
                medians[i] = median(r);
            }
            System.out.printf(
                    Locale.ROOT,
                    "%n(b) %d MiB in %d chunks of 256 KiB, +%d ms per request (proxy), median of runs%n",
                    mib,
                    primary.chunkKeys.size(),
                    latencyMs);
            System.out.println("| window | MiB/s (median) | runs | speed-up vs window 1 |");
            System.out.println("| --- | --- | --- | --- |");
            for (int i = 0; i < windows.length; i++) {
                System.out.printf(
                        Locale.ROOT,
                        "| %d | %.1f | %s | %.1f× |%n",
                        windows[i],
                        medians[i],
                        fmt(runs.get(i)),
                        medians[i] / medians[0]);
            }
        }
    }

    /**
     * (c): raw PutObject to RGW, the replicator to RGW and raw PutObject of the same objects to
     * S3Proxy, back to back in each round, in an order that rotates from round to round; both ratios
     * are taken per round.
     */
    private static void rgw(Server s3proxy, Server rgw, int mib, int window, int repetitions) throws Exception {
        Primary primary = Primary.of(mib);
        List<Double> rawRgw = new ArrayList<>();
        List<Double> replicator = new ArrayList<>();
        List<Double> rawS3Proxy = new ArrayList<>();
        List<Double> replicatorRatios = new ArrayList<>();
        List<Double> serverRatios = new ArrayList<>();
        List<Double> rawCpu = new ArrayList<>();
        List<Double> replicatorCpu = new ArrayList<>();
        List<Double> cpuRatios = new ArrayList<>();
        // one warm-up round, not counted
        for (int round = 0; round <= repetitions; round++) {
            double[] rates = new double[3];
            double[] cpu = new double[3];
            for (int i = 0; i < 3; i++) {
                int path = (round + i) % 3;
                rates[path] = switch (path) {
                    case 0 -> rawPuts(rgw, rgw.endpoint(), primary, window);
                    case 1 -> replicate(rgw, rgw.endpoint(), primary, window);
                    default -> rawPuts(s3proxy, s3proxy.endpoint(), primary, window);
                };
                cpu[path] = lastCpuPerGiB;
                double daemons = lastDaemonsPerGiB;
                if (path < 2) {
                    System.out.printf(
                            Locale.ROOT,
                            "round %d, RGW %s: %.1f MiB/s, CPU s/GiB %.2f = %s; Ceph daemons %.2f%n",
                            round,
                            path == 0 ? "raw" : "Replicator",
                            rates[path],
                            cpu[path],
                            lastCpuSplit,
                            daemons);
                }
            }
            if (round > 0) {
                rawCpu.add(cpu[0]);
                replicatorCpu.add(cpu[1]);
                cpuRatios.add(cpu[1] / cpu[0]);
            }
            if (round > 0) {
                rawRgw.add(rates[0]);
                replicator.add(rates[1]);
                rawS3Proxy.add(rates[2]);
                replicatorRatios.add(rates[1] / rates[0]);
                serverRatios.add(rates[0] / rates[2]);
            }
        }
        System.out.printf(
                Locale.ROOT,
                "%n(c) Ceph RGW (memstore) at %s: %d MiB in %d chunks of 256 KiB, window/threads %d,"
                        + " %d rounds after 1 warm-up%n",
                rgw.endpoint(),
                mib,
                primary.chunkKeys.size(),
                window,
                repetitions);
        System.out.println("| path | MiB/s (median) | runs |");
        System.out.println("| --- | --- | --- |");
        row("RGW: raw SDK PutObject, " + window + " threads", rawRgw);
        row("RGW: Replicator (Retrying → S3ObjectTarget), window " + window, replicator);
        row("S3Proxy: raw SDK PutObject, " + window + " threads", rawS3Proxy);
        ratio("RGW: Replicator / raw", replicatorRatios);
        ratio("raw PutObject RGW / S3Proxy", serverRatios);
        cpu("RGW: raw SDK PutObject (client only)", rawCpu);
        cpu("RGW: Replicator (client only)", replicatorCpu);
        ratio("RGW: client CPU per GiB, Replicator / raw", cpuRatios);
        fixedCost(rgw, window, repetitions, median(replicator), mib);
    }

    /**
     * The time of replicating a point of a single chunk: what every replication costs besides its
     * chunks (config, lease, manifest check, page, root, manifest, the lease's release), printed
     * as a share of the time a replication of {@code mib} MiB at {@code mibPerS} takes.
     */
    private static void fixedCost(Server server, int window, int repetitions, double mibPerS, int mib) {
        Primary one = Primary.ofChunks(1);
        List<Double> seconds = new ArrayList<>();
        for (int i = 0; i <= repetitions; i++) {
            double rate = replicate(server, server.endpoint(), one, window);
            if (i > 0) {
                seconds.add(one.bytes / MIB / rate);
            }
        }
        double s = median(seconds);
        System.out.printf(
                Locale.ROOT,
                "%s: a one-chunk replication takes %.3f s (median; %s ms): %.1f %% of a %d MiB one at %.1f MiB/s%n",
                server.name(),
                s,
                String.join(
                        ", ",
                        seconds.stream()
                                .map(v -> String.format(Locale.ROOT, "%.0f", v * 1000))
                                .toList()),
                100 * s / (mib / mibPerS),
                mib,
                mibPerS);
    }

    /** Replicates the primary's restore point to a fresh prefix; returns MiB/s of chunk objects. */
    private static double replicate(Server server, URI endpoint, Primary primary, int window) {
        S3Targets.Settings config = server.config(endpoint, "replicator-" + PREFIXES.incrementAndGet());
        try (ObjectTarget target = new RetryingObjectTarget(
                        config.open(), RetryingObjectTarget.Backoff.upTo(Duration.ofMinutes(1)));
                Replicator replicator = new Replicator(
                        primary.repository,
                        Map.of("bench", target),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        window)) {
            CpuSplit split = CpuSplit.start();
            double daemons = server.daemonCpuSeconds();
            long start = System.nanoTime();
            long cpu = PROCESS.getProcessCpuTime();
            replicator.replicate(VM, primary.point.id(), "bench");
            lastCpuPerGiB = (PROCESS.getProcessCpuTime() - cpu) / 1e9 / (primary.bytes / MIB / 1024);
            lastDaemonsPerGiB = (server.daemonCpuSeconds() - daemons) / (primary.bytes / MIB / 1024);
            lastCpuSplit = split.perGiB(primary.bytes / MIB / 1024);
            return primary.bytes / MIB / ((System.nanoTime() - start) / 1e9);
        } finally {
            wipe(server, config);
        }
    }

    /**
     * Deletes a run's objects, straight at the server (S3Proxy's transient back end keeps them in
     * this JVM's heap, memstore in the OSD's).
     */
    private static void wipe(Server server, S3Targets.Settings config) {
        try (S3ObjectTarget target =
                server.config(server.endpoint(), config.spec().prefix()).open()) {
            target.list("").forEach(target::delete);
        }
    }

    /** Puts the primary's chunk objects with plain PutObject from {@code threads} threads; MiB/s. */
    private static double rawPuts(Server server, URI endpoint, Primary primary, int threads) throws Exception {
        S3Targets.Settings config = server.config(endpoint, "raw-" + PREFIXES.incrementAndGet());
        AtomicInteger names = new AtomicInteger();
        ExecutorService pool =
                Executors.newFixedThreadPool(threads, r -> new Thread(r, "raw-put-" + names.incrementAndGet()));
        try (S3Client client = S3ObjectTarget.clientBuilder(
                        config.spec(), config.credentials(), S3ObjectTarget.Timeouts.DEFAULT)
                .build()) {
            List<byte[]> objects = new ArrayList<>();
            for (String key : primary.chunkKeys) {
                objects.add(primary.repository.target().get(key).orElseThrow());
            }
            CpuSplit split = CpuSplit.start();
            double daemons = server.daemonCpuSeconds();
            long start = System.nanoTime();
            long cpu = PROCESS.getProcessCpuTime();
            List<Future<?>> puts = new ArrayList<>();
            for (int i = 0; i < objects.size(); i++) {
                String key = config.spec().prefix() + primary.chunkKeys.get(i);
                byte[] object = objects.get(i);
                puts.add(pool.submit(() -> client.putObject(
                        r -> {
                            r.bucket(BUCKET).key(key).contentLength((long) object.length);
                            if (RAW_CONDITIONAL) {
                                r.ifNoneMatch("*");
                            }
                        },
                        RequestBody.fromBytes(object))));
            }
            for (Future<?> put : puts) {
                put.get();
            }
            lastCpuPerGiB = (PROCESS.getProcessCpuTime() - cpu) / 1e9 / (primary.bytes / MIB / 1024);
            lastDaemonsPerGiB = (server.daemonCpuSeconds() - daemons) / (primary.bytes / MIB / 1024);
            lastCpuSplit = split.perGiB(primary.bytes / MIB / 1024);
            return primary.bytes / MIB / ((System.nanoTime() - start) / 1e9);
        } catch (ExecutionException e) {
            throw new IllegalStateException("raw PutObject to " + server.name() + " failed", e.getCause());
        } finally {
            pool.shutdownNow();
            wipe(server, config);
        }
    }

    private static void row(String path, List<Double> rates) {
        System.out.printf(Locale.ROOT, "| %s | %.1f | %s |%n", path, median(rates), fmt(rates));
    }

    private static void cpu(String path, List<Double> perGiB) {
        System.out.printf(Locale.ROOT, "CPU s/GiB %s: median %.2f (%s)%n", path, median(perGiB), fmt(perGiB));
    }

    private static void ratio(String name, List<Double> ratios) {
        System.out.printf(
                Locale.ROOT,
                "ratio %s, per round: %s; median %.2f%n",
                name,
                String.join(
                        ", ",
                        ratios.stream()
                                .map(v -> String.format(Locale.ROOT, "%.2f", v))
                                .toList()),
                median(ratios));
    }

    private static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    private static String fmt(List<Double> values) {
        return String.join(
                ", ",
                values.stream().map(v -> String.format(Locale.ROOT, "%.1f", v)).toList());
    }

    /** An S3 server under test: its own endpoint, and target settings for a key prefix reached at an endpoint. */
    private record Server(
            String name,
            URI endpoint,
            BiFunction<URI, String, S3Targets.Settings> settings,
            java.util.Optional<java.nio.file.Path> daemons) {
        static Server of(EmbeddedS3 s3) {
            return new Server(
                    "S3Proxy",
                    s3.endpoint(),
                    (via, prefix) -> S3Targets.config(via, s3, BUCKET, prefix),
                    java.util.Optional.empty());
        }

        /**
         * CPU seconds the server's own processes (Ceph's mon, OSD and radosgw, named by the pid
         * files in the cluster's directory) have used so far; 0 for the in-process S3Proxy.
         */
        double daemonCpuSeconds() {
            if (daemons.isEmpty()) {
                return 0;
            }
            long ticks = 0;
            try (var files = Files.list(daemons.get())) {
                for (java.nio.file.Path pidFile :
                        files.filter(f -> f.toString().endsWith(".pid")).toList()) {
                    String pid = Files.readString(pidFile).strip();
                    String stat = Files.readString(java.nio.file.Path.of("/proc", pid, "stat"));
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    ticks += Long.parseLong(fields[11]) + Long.parseLong(fields[12]);
                }
            } catch (java.io.IOException | RuntimeException e) {
                return Double.NaN;
            }
            return ticks / 100.0; // USER_HZ
        }

        /** Path style, as in RgwObjectTargetIT. */
        static Server of(CephCluster ceph) {
            return new Server(
                    "Ceph RGW",
                    ceph.rgwEndpoint(),
                    (via, prefix) -> S3Targets.config(
                            via,
                            CephCluster.REGION,
                            BUCKET,
                            prefix,
                            S3Credentials.of(ceph.s3AccessKey(), ceph.s3SecretKey())),
                    java.util.Optional.of(ceph.dir()));
        }

        S3Targets.Settings config(URI via, String prefix) {
            return settings.apply(via, prefix);
        }
    }

    /** CPU seconds of this JVM's Java threads by group, from a snapshot to now. */
    private static final class CpuSplit {
        private static final java.lang.management.ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
        private final Map<Long, Long> before = new java.util.HashMap<>();
        private final long process;
        private final Map<String, Long> nativeBefore = nativeThreads();

        /**
         * CPU ticks of the JVM's own threads by kind (garbage collection, JIT compilers, the VM
         * thread), from /proc (Linux only; empty elsewhere).
         */
        private static Map<String, Long> nativeThreads() {
            Map<String, Long> ticks = new java.util.TreeMap<>();
            java.nio.file.Path tasks = java.nio.file.Path.of("/proc/self/task");
            if (!Files.isDirectory(tasks)) {
                return ticks;
            }
            try (var dirs = Files.list(tasks)) {
                for (java.nio.file.Path task : dirs.toList()) {
                    try {
                        String stat = Files.readString(task.resolve("stat"));
                        String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                        String kind = comm.startsWith("GC Thread") || comm.startsWith("G1")
                                ? "GC"
                                : comm.startsWith("C1") || comm.startsWith("C2") ? "JIT" : null;
                        if (kind == null) {
                            continue;
                        }
                        String[] fields =
                                stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                        ticks.merge(kind, Long.parseLong(fields[11]) + Long.parseLong(fields[12]), Long::sum);
                    } catch (java.io.IOException | RuntimeException e) {
                        // the thread ended meanwhile
                    }
                }
            } catch (java.io.IOException e) {
                return ticks;
            }
            return ticks;
        }

        private CpuSplit() {
            for (long id : THREADS.getAllThreadIds()) {
                before.put(id, Math.max(0, THREADS.getThreadCpuTime(id)));
            }
            process = PROCESS.getProcessCpuTime();
        }

        static CpuSplit start() {
            return new CpuSplit();
        }

        /** "upload a, main b, other Java c, GC/JIT/native d" in CPU seconds per {@code gib}. */
        String perGiB(double gib) {
            long processNow = PROCESS.getProcessCpuTime();
            Map<String, Long> groups = new java.util.TreeMap<>();
            long java = 0;
            for (java.lang.management.ThreadInfo info : THREADS.getThreadInfo(THREADS.getAllThreadIds())) {
                if (info == null) {
                    continue;
                }
                long now = THREADS.getThreadCpuTime(info.getThreadId());
                if (now < 0) {
                    continue;
                }
                long spent = now - before.getOrDefault(info.getThreadId(), 0L);
                java += spent;
                String name = info.getThreadName();
                String group = name.startsWith("replicate") || name.startsWith("raw-put")
                        ? "upload"
                        : name.equals("main") ? "main" : "other Java";
                groups.merge(group, spent, Long::sum);
            }
            long nativeKinds = 0;
            for (Map.Entry<String, Long> e : nativeThreads().entrySet()) {
                long spent = (e.getValue() - nativeBefore.getOrDefault(e.getKey(), 0L)) * 10_000_000L; // 100 Hz
                groups.put(e.getKey(), spent);
                nativeKinds += spent;
            }
            groups.put("other native", (processNow - process) - java - nativeKinds);
            return String.join(
                    ", ",
                    groups.entrySet().stream()
                            .map(e -> String.format(Locale.ROOT, "%s %.2f", e.getKey(), e.getValue() / 1e9 / gib))
                            .toList());
        }
    }

    /** Samples the 1-minute system load average every 5 s, for the run conditions of each section. */
    private static final class LoadSampler implements AutoCloseable {
        private final OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "bench-load");
            t.setDaemon(true);
            return t;
        });
        private final List<Double> samples = new ArrayList<>();
        private long started;

        static LoadSampler start() {
            LoadSampler sampler = new LoadSampler();
            sampler.reset();
            sampler.timer.scheduleAtFixedRate(sampler::sample, 5, 5, TimeUnit.SECONDS);
            return sampler;
        }

        synchronized void reset() {
            samples.clear();
            started = System.nanoTime();
            samples.add(os.getSystemLoadAverage());
        }

        private synchronized void sample() {
            samples.add(os.getSystemLoadAverage());
        }

        synchronized String report() {
            samples.add(os.getSystemLoadAverage());
            List<Double> sorted = samples.stream().sorted().toList();
            return String.format(
                    Locale.ROOT,
                    "section took %.0f s; load average (1 min, every 5 s): start %.2f, end %.2f, min %.2f,"
                            + " median %.2f, max %.2f",
                    (System.nanoTime() - started) / 1e9,
                    samples.get(0),
                    samples.get(samples.size() - 1),
                    sorted.get(0),
                    median(sorted),
                    sorted.get(sorted.size() - 1));
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    /** An in-memory primary repository holding one full restore point of random 256 KiB chunks. */
    private record Primary(Repository repository, Manifest point, List<String> chunkKeys, long bytes) {
        static Primary of(int mib) {
            return ofChunks(mib * 4);
        }

        static Primary ofChunks(int chunks) {
            Repository repository =
                    Repository.openOrInit(new InMemoryObjectTarget("bench-primary"), RepositoryConfig.defaults());
            RestorePoints points = new RestorePoints(repository, VM, chunks, 42);
            Manifest point = points.full(chunks);
            List<String> keys = points.chunkKeys(point);
            long bytes = keys.stream()
                    .mapToLong(k -> repository.target().get(k).orElseThrow().length)
                    .sum();
            return new Primary(repository, point, keys, bytes);
        }
    }
}
