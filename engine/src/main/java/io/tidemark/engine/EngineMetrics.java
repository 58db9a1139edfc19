package io.tidemark.engine;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.core.metrics.Info;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.replicator.Reconciler;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The engine's job, byte, replication and JVM metrics, derived in one place from what the engine's
 * roles already say: the events they publish (a decorated {@link EventBus}: {@link SnapshotJob} for
 * the scheduler's firing lag, {@link RestorePointCreated} and {@link JobFailed} for job outcomes and
 * bytes, {@link ReplicaCommitted} for bytes shipped), the jobs the worker is handed, the replication
 * handler of each target, the hypervisor's capture call and the reconciliation's view of what each
 * target lacks. The workers and the replicator know nothing of it.
 *
 * <p>Every family follows Prometheus naming (units in the name, {@code _total} for counters) and is
 * kept in memory: {@link #scrape()} reads counters and the reconciliation's in-memory state, never a
 * target, a VM or the broker. Label values are bounded by the VMs of this host, the policies and the
 * targets of the config; the jobs in flight it remembers are bounded by {@link #MAX_JOBS_TRACKED}.
 */
public final class EngineMetrics {

    /** Jobs whose start is remembered for their duration; the oldest is forgotten beyond this. */
    static final int MAX_JOBS_TRACKED = 10_000;

    static final String UNKNOWN = "unknown";

    private static final double[] JOB_SECONDS = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400};
    private static final double[] CAPTURE_SECONDS = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    private static final double[] LAG_SECONDS = {0.1, 0.5, 1, 5, 15, 30, 60, 300, 900};

    private final Clock clock;
    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Counter jobsStarted;
    private final Counter jobsSucceeded;
    private final Counter jobsFailed;
    private final Histogram jobDuration;
    private final Histogram captureDuration;
    private final Counter captureFailures;
    private final Counter bytesRead;
    private final Counter bytesStored;
    private final Counter bytesShipped;
    private final Counter replicasCommitted;
    private final Histogram replicationDuration;
    private final Counter targetErrors;
    private final Histogram firingLag;
    /** job id → the job as handed to the worker and when; insertion order, bounded. */
    private final Map<String, Started> started = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Started> eldest) {
            return size() > MAX_JOBS_TRACKED;
        }
    };

    private record Started(String vm, String policy, Instant at) {}

    public EngineMetrics(Clock clock) {
        this(clock, true);
    }

    /** @param jvm whether to add the JVM's metrics (heap, threads, GC) */
    EngineMetrics(Clock clock, boolean jvm) {
        this.clock = clock;
        jobsStarted = Counter.builder()
                .name("tidemark_jobs_started_total")
                .help("Snapshot jobs handed to this host's worker (each delivery, retries included).")
                .labelNames("policy", "vm")
                .register(registry);
        jobsSucceeded = Counter.builder()
                .name("tidemark_jobs_succeeded_total")
                .help("Snapshot jobs that committed a restore point in the primary repository.")
                .labelNames("policy", "vm")
                .register(registry);
        jobsFailed = Counter.builder()
                .name("tidemark_jobs_failed_total")
                .help("Jobs that ended without their outcome (JobFailed), by typed reason and stage.")
                .labelNames("policy", "vm", "reason", "stage")
                .register(registry);
        jobDuration = Histogram.builder()
                .name("tidemark_job_duration_seconds")
                .help("From a job's delivery to the worker to its restore point or failure.")
                .labelNames("policy", "outcome")
                .classicOnly()
                .classicUpperBounds(JOB_SECONDS)
                .register(registry);
        captureDuration = Histogram.builder()
                .name("tidemark_capture_duration_seconds")
                .help("How long the hypervisor's capture call took (guest freeze, atomic snapshot, thaw,"
                        + " export set-up): bounds how long a guest's file systems stay frozen.")
                .labelNames("vm")
                .classicOnly()
                .classicUpperBounds(CAPTURE_SECONDS)
                .register(registry);
        captureFailures = Counter.builder()
                .name("tidemark_capture_failures_total")
                .help("Capture calls the hypervisor failed.")
                .labelNames("vm")
                .register(registry);
        bytesRead = Counter.builder()
                .name("tidemark_backup_read_bytes_total")
                .help("Bytes the worker read from a VM's disks for committed restore points.")
                .labelNames("vm")
                .register(registry);
        bytesStored = Counter.builder()
                .name("tidemark_backup_stored_bytes_total")
                .help("Bytes of new chunks committed restore points stored in the primary repository.")
                .labelNames("vm")
                .register(registry);
        bytesShipped = Counter.builder()
                .name("tidemark_replication_shipped_bytes_total")
                .help("Bytes sent to a replication target for restore points committed there.")
                .labelNames("vm", "target")
                .register(registry);
        replicasCommitted = Counter.builder()
                .name("tidemark_replicas_committed_total")
                .help("Restore points committed on a replication target (by the event path or the reconciliation).")
                .labelNames("vm", "target")
                .register(registry);
        replicationDuration = Histogram.builder()
                .name("tidemark_replication_duration_seconds")
                .help("How long the replicator took to ship one new restore point to a target (event path).")
                .labelNames("target", "outcome")
                .classicOnly()
                .classicUpperBounds(JOB_SECONDS)
                .register(registry);
        targetErrors = Counter.builder()
                .name("tidemark_target_errors_total")
                .help("Failures of a replication target: kind retriable (it did not answer in time),"
                        + " permanent (it refused), corrupt (it returned damaged data).")
                .labelNames("target", "kind")
                .register(registry);
        firingLag = Histogram.builder()
                .name("tidemark_scheduler_firing_lag_seconds")
                .help("How late the scheduler published a job after the policy's fire time.")
                .classicOnly()
                .classicUpperBounds(LAG_SECONDS)
                .register(registry);
        String version = java.util.Optional.ofNullable(
                        EngineMetrics.class.getPackage().getImplementationVersion())
                .orElse("dev");
        Info.builder()
                .name("tidemark_build_info")
                .help("The engine's version and the Java runtime it runs on; the value is always 1.")
                .labelNames("version", "java_version")
                .register(registry)
                .setLabelValues(version, System.getProperty("java.version", UNKNOWN));
        if (jvm) {
            JvmMetrics.builder().register(registry);
        }
    }

    /**
     * Adds gauges read from memory at each scrape: per target and VM, the restore points the target
     * lacks and their bytes (as the reconciliation counted them); per component, whether it is ready.
     */
    void observe(Supplier<Map<String, Reconciler.TargetState>> targets, EngineHealth health) {
        GaugeWithCallback.builder()
                .name("tidemark_replication_backlog_points")
                .help("Restore points a target should hold and lacks, per VM (the reconciliation ships them).")
                .labelNames("target", "vm")
                .callback(cb ->
                        targets.get().forEach((name, s) -> s.missingByVm().forEach((vm, n) -> cb.call(n, name, vm))))
                .register(registry);
        GaugeWithCallback.builder()
                .name("tidemark_replication_backlog_bytes")
                .help("New bytes of the restore points a target lacks (what their chunks took in the primary).")
                .labelNames("target")
                .callback(cb -> targets.get().forEach((name, s) -> cb.call(s.missingBytes(), name)))
                .register(registry);
        if (health != null) {
            GaugeWithCallback.builder()
                    .name("tidemark_component_ready")
                    .help("1 when a component of the engine (bus, scheduler, worker, replicator, rpo,"
                            + " target:NAME) is ready, as /readyz reports it; 0 when not.")
                    .labelNames("component")
                    .callback(cb -> health.components().forEach(c -> cb.call(c.ready() ? 1 : 0, c.name())))
                    .register(registry);
        }
    }

    /**
     * Adds, per subscription of the bus, the events it has not handled yet (as of its last poll;
     * {@link EventBus#subscriptions()} is kept by the bus, never asked of the broker).
     */
    void observeBus(Supplier<List<EventBus.SubscriptionState>> subscriptions) {
        GaugeWithCallback.builder()
                .name("tidemark_bus_consumer_lag_events")
                .help("Events a subscription of the bus has not handled yet: behind the log's end, or fetched"
                        + " and still queued or running. Role: worker, replicator, rpo, hooks or the group.")
                .labelNames("role", "group")
                .callback(cb -> subscriptions.get().forEach(s -> s.lag()
                        .ifPresent(l -> cb.call(l, roleOf(s.group()), s.group()))))
                .register(registry);
    }

    /** The role a consumer group of the engine serves, from its name. */
    static String roleOf(String group) {
        for (String role : List.of("worker", "replicator", "rpo", "hook-triggers")) {
            if (group.startsWith("tidemark-" + role + "-")) {
                return role.equals("hook-triggers") ? "hooks" : role;
            }
        }
        return group;
    }

    /** The text exposition of every family, from memory. */
    public String scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            new PrometheusTextFormatWriter(false).write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a byte array does not fail
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The bus, publishing through {@code bus} and counting what the engine's roles publish. */
    public EventBus metering(EventBus bus) {
        return new MeteredEventBus(bus);
    }

    /** The worker's job handler, counting each job handed to it. */
    public EventBus.EventHandler meteringJobs(EventBus.EventHandler worker) {
        return (topic, event) -> {
            if (event.payload() instanceof SnapshotJob job) {
                synchronized (started) {
                    started.put(event.jobId(), new Started(job.vm(), job.policy(), clock.instant()));
                }
                jobsStarted.labelValues(job.policy(), job.vm()).inc();
            }
            worker.handle(topic, event);
        };
    }

    /** A target's replication handler, timed, its failures counted as target errors. */
    public EventBus.EventHandler meteringReplication(String target, EventBus.EventHandler replicate) {
        return (topic, event) -> {
            if (!(event.payload() instanceof RestorePointCreated created)
                    || !created.targets().contains(target)) {
                replicate.handle(topic, event);
                return;
            }
            long t0 = System.nanoTime();
            try {
                replicate.handle(topic, event);
                replicationDuration.labelValues(target, "shipped").observe(seconds(t0));
            } catch (RuntimeException e) {
                replicationDuration.labelValues(target, "failed").observe(seconds(t0));
                targetErrors.labelValues(target, kindOf(e)).inc();
                throw e;
            }
        };
    }

    /** The hypervisor, its capture calls timed. */
    public Hypervisor metering(Hypervisor hypervisor) {
        return new MeteredHypervisor(hypervisor);
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }

    static String kindOf(RuntimeException e) {
        Throwable t = e;
        // the replicator wraps a retriable failure whose retries ran out into a permanent one
        while (t != null) {
            if (t instanceof CorruptObjectException) {
                return "corrupt";
            }
            if (t instanceof RetriableException) {
                return "retriable";
            }
            t = t.getCause() == t ? null : t.getCause();
        }
        return e instanceof PermanentException ? "permanent" : "internal";
    }

    /** Counts what one published event says. */
    void published(Event event) {
        EventPayload payload = event.payload();
        if (payload instanceof SnapshotJob job) {
            firingLag.observe(secondsSince(job.scheduledFor(), event.time()));
        } else if (payload instanceof RestorePointCreated created) {
            Started s = ended(event.jobId());
            jobsSucceeded.labelValues(created.policy(), created.vm()).inc();
            bytesRead.labelValues(created.vm()).inc(created.bytesRead());
            bytesStored.labelValues(created.vm()).inc(created.bytesNew());
            if (s != null) {
                jobDuration.labelValues(created.policy(), "succeeded").observe(secondsSince(s.at(), event.time()));
            }
        } else if (payload instanceof JobFailed failed) {
            String reason =
                    failed.reason().map(r -> r.name().toLowerCase(Locale.ROOT)).orElse(UNKNOWN);
            // a replication failure is the target's, not the end of the backup job that made the point
            boolean replication =
                    failed.reason().filter(FailureReason.TARGET_FAILED::equals).isPresent()
                            && "replicate".equals(failed.stage());
            Started s = replication ? null : ended(event.jobId());
            String policy = s == null ? UNKNOWN : s.policy();
            jobsFailed.labelValues(policy, failed.vm(), reason, failed.stage()).inc();
            if (s != null) {
                jobDuration.labelValues(policy, "failed").observe(secondsSince(s.at(), event.time()));
            }
        } else if (payload instanceof ReplicaCommitted replica) {
            bytesShipped.labelValues(replica.vm(), replica.target()).inc(replica.bytesSent());
            replicasCommitted.labelValues(replica.vm(), replica.target()).inc();
        }
        // inventory, captures, RPO violations: not counted here
    }

    private Started ended(String jobId) {
        synchronized (started) {
            return started.remove(jobId);
        }
    }

    private static double secondsSince(Instant from, Instant to) {
        return Math.max(0, Duration.between(from, to).toMillis()) / 1000.0;
    }

    /** Publishes through the real bus, then counts the event; everything else is the real bus's. */
    private final class MeteredEventBus implements EventBus {
        private final EventBus bus;

        MeteredEventBus(EventBus bus) {
            this.bus = bus;
        }

        @Override
        public void publish(String topic, String key, Event event) {
            bus.publish(topic, key, event);
            published(event);
        }

        @Override
        public java.util.concurrent.CompletableFuture<Void> publishAsync(String topic, String key, Event event) {
            return bus.publishAsync(topic, key, event).thenRun(() -> published(event));
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return bus.subscribe(group, topics, handler);
        }

        @Override
        public Subscription subscribeByKey(String group, List<String> topics, int maxInFlight, EventHandler handler) {
            return bus.subscribeByKey(group, topics, maxInFlight, handler);
        }

        @Override
        public List<SubscriptionState> subscriptions() {
            return bus.subscriptions();
        }

        /** The real bus is the engine's to close. */
        @Override
        public void close() {
            // nothing of its own
        }
    }

    /** Times {@link Hypervisor#capture}; everything else is the real hypervisor's. */
    private final class MeteredHypervisor implements Hypervisor {
        private final Hypervisor hypervisor;

        MeteredHypervisor(Hypervisor hypervisor) {
            this.hypervisor = hypervisor;
        }

        @Override
        public List<VmInfo> list() {
            return hypervisor.list();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            long t0 = System.nanoTime();
            try {
                Capture c = hypervisor.capture(request);
                captureDuration.labelValues(request.vm()).observe(seconds(t0));
                return c;
            } catch (RuntimeException e) {
                captureFailures.labelValues(request.vm()).inc();
                throw e;
            }
        }

        /** The real hypervisor is the engine's to close. */
        @Override
        public void close() {
            // nothing of its own
        }

        @Override
        public String toString() {
            return hypervisor.toString();
        }
    }
}
