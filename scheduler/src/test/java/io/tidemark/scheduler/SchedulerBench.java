package io.tidemark.scheduler;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.files.FileTrees;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookService;
import io.tidemark.scheduler.hook.HookSignature;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Benchmarks of the scheduler (not a test; nothing asserts on time). Run it with the command in
 * docs/benchmarks.md, section "Scheduler".
 *
 * <p>Firing lag: 10,000 VMs in an {@link InMemoryInventory}, 100 interval policies selecting 100
 * VMs each by glob, intervals spread over 10 s–60 s, the default Quartz settings (RAM store, two
 * worker threads). A bus that only records the publish time of each job; the lag of a job is its
 * publish time minus the scheduled fire time it carries. Heap used after GC is compared with a
 * baseline taken before anything is built.
 *
 * <p>Pre-deploy hook: an {@link EmbeddedKafka} broker and a {@link KafkaEventBus}; the real {@link
 * HookServer} and {@link HookService} on 127.0.0.1; a fake worker subscribed to the VM's job topic
 * answers each {@link SnapshotJob} at once with {@link SnapshotCaptured}. Each hook is a signed POST
 * waiting for {@code captured}, sent one after another; its latency is from sending the request to
 * the 200 response. The baseline, on the same broker in the same run: publish → consume (one hop),
 * and publish → consume → publish → consume (two hops, the minimum a hook needs: job, then outcome).
 *
 * <p>Settings (system properties): {@code bench.sections} ({@code lag,hook}), {@code bench.seconds}
 * (120), {@code bench.vms} (10000), {@code bench.policies} (100), {@code bench.hooks} (200), {@code
 * bench.warmup} (20).
 */
public final class SchedulerBench {
    private SchedulerBench() {}

    public static void main(String[] args) throws Exception {
        int seconds = Integer.getInteger("bench.seconds", 120);
        int vmCount = Integer.getInteger("bench.vms", 10_000);
        int policyCount = Integer.getInteger("bench.policies", 100);
        String sections = System.getProperty("bench.sections", "lag,hook");
        if (sections.contains("lag")) {
            firingLag(seconds, vmCount, policyCount);
        }
        if (sections.contains("hook")) {
            hookLatency(Integer.getInteger("bench.hooks", 200), Integer.getInteger("bench.warmup", 20));
        }
        System.exit(0); // Quartz and logback threads
    }

    // ---- (a) firing lag ---------------------------------------------------------------------------

    private static void firingLag(int seconds, int vmCount, int policyCount) throws Exception {
        long baseline = usedAfterGc();
        int perPolicy = vmCount / policyCount;
        InMemoryInventory inventory = new InMemoryInventory();
        for (int v = 0; v < vmCount; v++) {
            int group = v / perPolicy;
            inventory.put(String.format("vm-%03d-%05d", group, v), "host-" + (v % 50), Map.of("group", "g" + group));
        }
        PolicyParser parser = new PolicyParser();
        List<Policy> policies = new ArrayList<>();
        for (int p = 0; p < policyCount; p++) {
            long intervalSeconds = 10 + (50L * p) / Math.max(1, policyCount - 1);
            String yaml = String.format(
                    """
                    name: bench-%03d
                    vms:
                      globs: ["vm-%03d-*"]
                    schedule:
                      interval: %ds
                    consistency: crash
                    rpo: 2h
                    rto: 1h
                    full-every: 7d
                    targets: [bench]
                    """,
                    p, p, intervalSeconds);
            policies.add(parser.parse(Path.of("bench-" + p + ".yaml"), yaml.getBytes(StandardCharsets.UTF_8)));
        }
        LagBus bus = new LagBus();
        long start = System.nanoTime();
        PolicyScheduler scheduler = PolicyScheduler.start(PolicySet.of(policies), inventory, bus, Clock.systemUTC());
        {
            Thread.sleep(Duration.ofSeconds(seconds).toMillis());
            long loaded = usedAfterGc();
            long elapsed = System.nanoTime() - start;
            scheduler.close();
            long[] lags = bus.lagsMillis();
            System.out.printf(
                    "%n(a) firing lag: %d VMs, %d policies x %d VMs, intervals 10-60 s, %.0f s%n",
                    vmCount, policyCount, perPolicy, elapsed / 1e9);
            System.out.printf(
                    "jobs published %d in %d firings; lag ms p50 %d  p99 %d  max %d  (min %d)%n",
                    lags.length,
                    bus.firings.size(),
                    pct(lags, 50),
                    pct(lags, 99),
                    lags.length == 0 ? 0 : lags[lags.length - 1],
                    lags.length == 0 ? 0 : lags[0]);
            long[] firstJob = bus.firstJobLagsMillis();
            long[] lastJob = bus.lastJobLagsMillis();
            System.out.printf(
                    "per firing: first job lag p50 %d p99 %d max %d; last job lag p50 %d p99 %d max %d%n",
                    pct(firstJob, 50),
                    pct(firstJob, 99),
                    firstJob.length == 0 ? 0 : firstJob[firstJob.length - 1],
                    pct(lastJob, 50),
                    pct(lastJob, 99),
                    lastJob.length == 0 ? 0 : lastJob[lastJob.length - 1]);
            System.out.printf(
                    "heap used after GC: baseline %.1f MiB, with inventory + scheduler %.1f MiB, delta %.1f MiB%n",
                    baseline / 1048576.0, loaded / 1048576.0, (loaded - baseline) / 1048576.0);
        }
    }

    /** Records, per job, the lag between the fire time it carries and its publish. Keeps no events. */
    private static final class LagBus implements EventBus {
        private final List<Long> lags = java.util.Collections.synchronizedList(new ArrayList<>());
        /** firing (policy@fire time) → {min lag, max lag}. */
        final Map<String, long[]> firings = new ConcurrentHashMap<>();

        @Override
        public void publish(String topic, String key, Event event) {
            long now = System.currentTimeMillis();
            SnapshotJob job = (SnapshotJob) event.payload();
            long lag = now - job.scheduledFor().toEpochMilli();
            lags.add(lag);
            firings.merge(job.policy() + "@" + job.scheduledFor().toEpochMilli(), new long[] {lag, lag}, (a, b) -> {
                a[0] = Math.min(a[0], b[0]);
                a[1] = Math.max(a[1], b[1]);
                return a;
            });
        }

        long[] lagsMillis() {
            synchronized (lags) {
                return lags.stream().mapToLong(Long::longValue).sorted().toArray();
            }
        }

        long[] firstJobLagsMillis() {
            return firings.values().stream().mapToLong(a -> a[0]).sorted().toArray();
        }

        long[] lastJobLagsMillis() {
            return firings.values().stream().mapToLong(a -> a[1]).sorted().toArray();
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }

    // ---- (b) pre-deploy hook latency ---------------------------------------------------------------

    private static final String HOST = "hv-bench";
    private static final HookSecret SECRET = HookSecret.of("0123456789abcdef0123456789abcdef", "bench");

    private static void hookLatency(int hooks, int warmup) throws Exception {
        Path dir = Files.createTempDirectory("tidemark-hook-bench");
        try (EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            bus.ensureTopics(List.of(
                    Topics.jobs(HOST), Topics.JOB_STATUS, Topics.RESTORE_POINTS, Topics.REPLICATION, PING, PONG));
            double[][] baseline = roundTrips(bus, hooks, warmup);
            double[] hook = hooks(bus, hooks, warmup);
            double[] oneHop = baseline[0];
            double[] twoHops = baseline[1];
            System.out.printf(
                    "%n(b) pre-deploy hook, %d hooks after %d warm-up, one VM, wait=captured%n", hooks, warmup);
            System.out.printf("%-48s %9s %9s %9s%n", "path (ms)", "p50", "p99", "max");
            row("bare publish -> consume (1 hop)", oneHop);
            row("publish -> consume -> publish -> consume (2 hops)", twoHops);
            row("hook: HTTP request -> 200 captured", hook);
            System.out.printf(
                    "ratio hook / 2 hops: p50 %.1f  p99 %.1f;  hook / 1 hop: p50 %.1f  p99 %.1f%n",
                    pct(hook, 50) / pct(twoHops, 50),
                    pct(hook, 99) / pct(twoHops, 99),
                    pct(hook, 50) / pct(oneHop, 50),
                    pct(hook, 99) / pct(oneHop, 99));
        } finally {
            FileTrees.delete(dir);
        }
    }

    private static final String PING = "tidemark.bench.ping";
    private static final String PONG = "tidemark.bench.pong";

    /** [0]: publish → consume; [1]: publish → consume → publish → consume; in ms, sorted. */
    private static double[][] roundTrips(KafkaEventBus bus, int n, int warmup) throws Exception {
        Map<String, Long> pinged = new ConcurrentHashMap<>();
        Map<String, CompletableFuture<Long>> ponged = new ConcurrentHashMap<>();
        try (EventBus.Subscription echo = bus.subscribe("bench-echo", List.of(PING), (topic, event) -> {
                    pinged.put(event.jobId(), System.nanoTime());
                    bus.publish(PONG, event.jobId(), event);
                });
                EventBus.Subscription back = bus.subscribe("bench-back", List.of(PONG), (topic, event) -> {
                    CompletableFuture<Long> f = ponged.get(event.jobId());
                    if (f != null) {
                        f.complete(System.nanoTime());
                    }
                })) {
            double[] one = new double[n];
            double[] two = new double[n];
            for (int i = -warmup; i < n; i++) {
                String id = "ping-" + i;
                CompletableFuture<Long> done = new CompletableFuture<>();
                ponged.put(id, done);
                long t0 = System.nanoTime();
                bus.publish(PING, id, Event.of(id, Instant.now(), new SnapshotCaptured("ping", Instant.now())));
                long t2 = done.get(60, TimeUnit.SECONDS);
                if (i >= 0) {
                    one[i] = (pinged.get(id) - t0) / 1e6;
                    two[i] = (t2 - t0) / 1e6;
                }
            }
            Arrays.sort(one);
            Arrays.sort(two);
            return new double[][] {one, two};
        }
    }

    /** Hook latencies in ms, sorted. */
    private static double[] hooks(KafkaEventBus bus, int n, int warmup) throws Exception {
        InMemoryInventory inventory = new InMemoryInventory().put("shop-1", HOST, Map.of("app", "shop"));
        Policy shop = Policy.of(
                        "shop",
                        new VmSelector(List.of(), List.of(), Map.of("app", "shop")),
                        Schedule.Interval.every(Duration.ofHours(1)),
                        Duration.ofHours(2),
                        List.of("offsite"))
                .withPreDeployApps(List.of("shop"));
        Clock clock = Clock.systemUTC();
        HookService service = new HookService(PolicySet.of(shop), inventory, bus, clock);
        HttpClient http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        try (EventBus.Subscription worker = bus.subscribe("bench-worker", List.of(Topics.jobs(HOST)), (t, event) -> {
                    if (event.payload() instanceof SnapshotJob job) {
                        bus.publish(
                                Topics.JOB_STATUS,
                                job.vm(),
                                Event.of(
                                        event.jobId(),
                                        clock.instant(),
                                        new SnapshotCaptured(job.vm(), clock.instant())));
                    }
                });
                HookServer server = HookServer.start(new InetSocketAddress("127.0.0.1", 0), service, SECRET, clock)) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + HookServer.PATH);
            double[] latencies = new double[n];
            for (int i = -warmup; i < n; i++) {
                String body = "{\"app\":\"shop\",\"commit\":\"c" + (i + warmup)
                        + "\",\"pipeline\":\"bench\",\"wait\":\"captured\",\"timeoutSeconds\":60}";
                String ts = String.valueOf(clock.instant().getEpochSecond());
                HttpRequest request = HttpRequest.newBuilder(uri)
                        .timeout(Duration.ofSeconds(90))
                        .header(HookSignature.TIMESTAMP_HEADER, ts)
                        .header(
                                HookSignature.SIGNATURE_HEADER,
                                HookSignature.sign(SECRET, ts, body.getBytes(StandardCharsets.UTF_8)))
                        .POST(HttpRequest.BodyPublishers.ofString(body))
                        .build();
                long t0 = System.nanoTime();
                HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
                long t1 = System.nanoTime();
                if (response.statusCode() != 200) {
                    throw new IllegalStateException(
                            "hook " + i + ": HTTP " + response.statusCode() + " " + response.body());
                }
                if (i >= 0) {
                    latencies[i] = (t1 - t0) / 1e6;
                }
            }
            Arrays.sort(latencies);
            return latencies;
        }
    }

    private static void row(String name, double[] sorted) {
        System.out.printf(
                "%-48s %9.1f %9.1f %9.1f%n", name, pct(sorted, 50), pct(sorted, 99), sorted[sorted.length - 1]);
    }

    static double pct(double[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    // ---- helpers ----------------------------------------------------------------------------------

    static long pct(long[] sorted, int p) {
        if (sorted.length == 0) {
            return 0;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static long usedAfterGc() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return rt.totalMemory() - rt.freeMemory();
    }
}
