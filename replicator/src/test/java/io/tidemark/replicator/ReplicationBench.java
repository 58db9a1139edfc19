package io.tidemark.replicator;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.replicator.s3.S3ObjectTarget;
import io.tidemark.replicator.s3.S3TargetConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Replication throughput against an in-process S3Proxy (transient back end), printed as ratios to
 * baselines measured in the same run. Not a test: a {@code main} in test scope.
 *
 * <ol>
 *   <li>(a) {@code bench.mib} MiB of 256 KiB random chunks replicated with window {@code
 *       bench.window}, against the raw AWS SDK PutObject rate of the same objects with as many
 *       threads;
 *   <li>(b) {@code bench.latencyMib} MiB through a {@link FaultyHttpProxy} adding {@code
 *       bench.latencyMs} ms to every request, with windows 8 and 32 against window 1.
 * </ol>
 *
 * <p>Run (see docs/benchmarks.md):
 *
 * <pre>
 * mvn -q -B -o install -pl testkit -DskipTests -Dspotless.check.skip=true
 * mvn -q -B -o -pl replicator test-compile org.codehaus.mojo:exec-maven-plugin:3.5.0:java \
 *     -Dexec.mainClass=io.tidemark.replicator.ReplicationBench -Dexec.classpathScope=test
 * </pre>
 */
public final class ReplicationBench {

    private static final String BUCKET = "bench";
    private static final String VM = "bench-vm";
    private static final double MIB = 1 << 20;
    private static final AtomicInteger PREFIXES = new AtomicInteger();

    private ReplicationBench() {}

    /** Runs both parts and prints the tables; settings are system properties. */
    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 256);
        int window = Integer.getInteger("bench.window", 8);
        int repetitions = Integer.getInteger("bench.repetitions", 5);
        int latencyMib = Integer.getInteger("bench.latencyMib", 32);
        int latencyMs = Integer.getInteger("bench.latencyMs", 50);

        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket(BUCKET);
            System.out.printf(
                    Locale.ROOT,
                    "JVM %s, %d cores, S3Proxy (transient) at %s%n",
                    Runtime.version(),
                    Runtime.getRuntime().availableProcessors(),
                    s3.endpoint());
            throughput(s3, mib, window, repetitions);
            latency(s3, latencyMib, latencyMs, repetitions);
        }
    }

    /**
     * (a): the replicator against raw PutObject of the same objects, same parallelism. The two run
     * back to back in each round, in alternating order, and the ratio is taken per round, so that
     * load from elsewhere on the machine affects both sides of a ratio alike.
     */
    private static void throughput(EmbeddedS3 s3, int mib, int window, int repetitions) throws Exception {
        Primary primary = Primary.of(mib);
        List<Double> replicator = new ArrayList<>();
        List<Double> raw = new ArrayList<>();
        List<Double> ratios = new ArrayList<>();
        // one warm-up round, not counted
        for (int round = 0; round <= repetitions; round++) {
            double r;
            double t;
            if (round % 2 == 0) {
                r = rawPuts(s3, s3.endpoint(), primary, window);
                t = replicate(s3, s3.endpoint(), primary, window);
            } else {
                t = replicate(s3, s3.endpoint(), primary, window);
                r = rawPuts(s3, s3.endpoint(), primary, window);
            }
            if (round > 0) {
                raw.add(r);
                replicator.add(t);
                ratios.add(t / r);
            }
        }
        System.out.printf(
                Locale.ROOT,
                "%n(a) %d MiB in %d chunks of 256 KiB, window/threads %d, %d rounds after 1 warm-up%n",
                mib,
                primary.chunkKeys.size(),
                window,
                repetitions);
        System.out.println("| path | MiB/s (median) | runs |");
        System.out.println("| --- | --- | --- |");
        System.out.printf(
                Locale.ROOT, "| raw SDK PutObject, %d threads | %.1f | %s |%n", window, median(raw), fmt(raw));
        System.out.printf(
                Locale.ROOT,
                "| Replicator (Retrying → S3ObjectTarget), window %d | %.1f | %s |%n",
                window,
                median(replicator),
                fmt(replicator));
        System.out.printf(
                Locale.ROOT,
                "ratio Replicator / raw, per round: %s; median %.2f%n",
                String.join(
                        ", ",
                        ratios.stream()
                                .map(v -> String.format(Locale.ROOT, "%.2f", v))
                                .toList()),
                median(ratios));
    }

    /** (b): windows 8 and 32 against window 1, every request delayed by the proxy. */
    private static void latency(EmbeddedS3 s3, int mib, int latencyMs, int repetitions) throws Exception {
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

    /** Replicates the primary's restore point to a fresh prefix; returns MiB/s of chunk objects. */
    private static double replicate(EmbeddedS3 s3, URI endpoint, Primary primary, int window) {
        S3TargetConfig config = S3Targets.config(endpoint, s3, BUCKET, "replicator-" + PREFIXES.incrementAndGet());
        try (ObjectTarget target = new RetryingObjectTarget(
                        S3ObjectTarget.create(config), RetryingObjectTarget.Backoff.upTo(Duration.ofMinutes(1)));
                Replicator replicator = new Replicator(
                        primary.repository,
                        Map.of("bench", target),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        window)) {
            long start = System.nanoTime();
            replicator.replicate(VM, primary.point.id(), "bench");
            return primary.bytes / MIB / ((System.nanoTime() - start) / 1e9);
        } finally {
            wipe(s3, config);
        }
    }

    /** Deletes a run's objects (S3Proxy's transient back end keeps them in this JVM's heap). */
    private static void wipe(EmbeddedS3 s3, S3TargetConfig config) {
        try (S3ObjectTarget target =
                S3ObjectTarget.create(S3Targets.config(s3.endpoint(), s3, BUCKET, config.keyPrefix()))) {
            target.list("").forEach(target::delete);
        }
    }

    /** Puts the primary's chunk objects with plain PutObject from {@code threads} threads; MiB/s. */
    private static double rawPuts(EmbeddedS3 s3, URI endpoint, Primary primary, int threads) throws Exception {
        S3TargetConfig config = S3Targets.config(endpoint, s3, BUCKET, "raw-" + PREFIXES.incrementAndGet());
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try (S3Client client = S3ObjectTarget.clientBuilder(config, S3TargetConfig.Timeouts.DEFAULT)
                .build()) {
            List<byte[]> objects = new ArrayList<>();
            for (String key : primary.chunkKeys) {
                objects.add(primary.repository.target().get(key).orElseThrow());
            }
            long start = System.nanoTime();
            List<Future<?>> puts = new ArrayList<>();
            for (int i = 0; i < objects.size(); i++) {
                String key = config.keyPrefix() + primary.chunkKeys.get(i);
                byte[] object = objects.get(i);
                puts.add(pool.submit(() -> client.putObject(
                        r -> r.bucket(BUCKET).key(key).contentLength((long) object.length),
                        RequestBody.fromBytes(object))));
            }
            for (Future<?> put : puts) {
                put.get();
            }
            return primary.bytes / MIB / ((System.nanoTime() - start) / 1e9);
        } catch (ExecutionException e) {
            throw new IllegalStateException("raw PutObject failed", e.getCause());
        } finally {
            pool.shutdownNow();
            wipe(s3, config);
        }
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

    /** An in-memory primary repository holding one full restore point of random 256 KiB chunks. */
    private record Primary(Repository repository, Manifest point, List<String> chunkKeys, long bytes) {
        static Primary of(int mib) {
            int chunks = mib * 4;
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
