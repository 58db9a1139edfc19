package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.replicator.Reconciler;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class EngineMetricsTest {

    private static final Instant T0 = Instant.parse("2026-12-06T00:00:00Z");

    private final FakeClock clock = new FakeClock(T0);
    private final EngineMetrics metrics = new EngineMetrics(clock, false);
    private final RecordingEventBus recording = new RecordingEventBus();
    private final EventBus bus = metrics.metering(recording);

    private static SnapshotJob job(String vm, String policy, Instant fireTime) {
        return new SnapshotJob(vm, "hv1", policy, Trigger.schedule(policy), List.of("s3"), fireTime);
    }

    private void deliver(String jobId, SnapshotJob job) {
        metrics.meteringJobs((t, e) -> {}).handle(Topics.jobs("hv1"), new Event(jobId, jobId, clock.instant(), job));
    }

    /** The value of one sample line, e.g. {@code name{a="b"}}; fails when absent. */
    private static double sample(String text, String series) {
        Matcher m =
                Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
        assertThat(m.find()).as("%s in%n%s", series, text).isTrue();
        return Double.parseDouble(m.group(1));
    }

    @Test
    void jobsAreCountedByPolicyVmAndReasonWithTheirDurationsAndBytes() {
        deliver("j1", job("web-1", "web", T0));
        clock.advance(Duration.ofSeconds(42));
        bus.publish(
                Topics.RESTORE_POINTS,
                "web-1",
                new Event(
                        "e1",
                        "j1",
                        clock.instant(),
                        new RestorePointCreated("web-1", "rp1", "web", List.of("s3"), T0, 1000, 300)));
        deliver("j2", job("web-1", "web", clock.instant()));
        clock.advance(Duration.ofSeconds(700));
        bus.publish(
                Topics.JOB_STATUS,
                "web-1",
                new Event(
                        "e2",
                        "j2",
                        clock.instant(),
                        JobFailed.of("web-1", "capture", FailureReason.DEADLINE_EXCEEDED, "too slow", true)));

        String text = metrics.scrape();

        assertThat(recording.published()).hasSize(2); // the real bus got every event
        assertThat(sample(text, "tidemark_jobs_started_total{policy=\"web\",vm=\"web-1\"}"))
                .isEqualTo(2);
        assertThat(sample(text, "tidemark_jobs_succeeded_total{policy=\"web\",vm=\"web-1\"}"))
                .isEqualTo(1);
        assertThat(sample(
                        text,
                        "tidemark_jobs_failed_total{policy=\"web\",reason=\"deadline_exceeded\",stage=\"capture\","
                                + "vm=\"web-1\"}"))
                .isEqualTo(1);
        assertThat(sample(text, "tidemark_backup_read_bytes_total{vm=\"web-1\"}"))
                .isEqualTo(1000);
        assertThat(sample(text, "tidemark_backup_stored_bytes_total{vm=\"web-1\"}"))
                .isEqualTo(300);
        assertThat(sample(
                        text, "tidemark_job_duration_seconds_bucket{outcome=\"succeeded\",policy=\"web\",le=\"30.0\"}"))
                .isEqualTo(0);
        assertThat(sample(
                        text, "tidemark_job_duration_seconds_bucket{outcome=\"succeeded\",policy=\"web\",le=\"60.0\"}"))
                .isEqualTo(1);
        assertThat(sample(text, "tidemark_job_duration_seconds_sum{outcome=\"failed\",policy=\"web\"}"))
                .isEqualTo(700);
    }

    @Test
    void aReplicationFailureCountsAsTheTargetsErrorAndShippedBytesPerVmAndTarget() {
        EventBus.EventHandler failing = metrics.meteringReplication("s3", (t, e) -> {
            throw new PermanentException("gave up", new RetriableException("503 SlowDown"));
        });
        Event created =
                new Event("e1", "j1", T0, new RestorePointCreated("web-1", "rp1", "web", List.of("s3"), T0, 1000, 300));
        assertThatThrownBy(() -> failing.handle(Topics.RESTORE_POINTS, created)).isInstanceOf(PermanentException.class);
        bus.publish(
                Topics.JOB_STATUS,
                "web-1",
                new Event(
                        "e2",
                        "j1",
                        T0,
                        JobFailed.of("web-1", "replicate", FailureReason.TARGET_FAILED, "s3: gave up", false)));
        bus.publish(
                Topics.REPLICATION,
                "web-1",
                new Event("e3", "j1", T0, new ReplicaCommitted("web-1", "rp1", "s3", T0, 12, 4096)));

        String text = metrics.scrape();

        assertThat(sample(text, "tidemark_target_errors_total{kind=\"retriable\",target=\"s3\"}"))
                .isEqualTo(1);
        assertThat(sample(text, "tidemark_replication_duration_seconds_count{outcome=\"failed\",target=\"s3\"}"))
                .isEqualTo(1);
        assertThat(sample(
                        text,
                        "tidemark_jobs_failed_total{policy=\"unknown\",reason=\"target_failed\",stage=\"replicate\","
                                + "vm=\"web-1\"}"))
                .isEqualTo(1);
        assertThat(sample(text, "tidemark_replication_shipped_bytes_total{target=\"s3\",vm=\"web-1\"}"))
                .isEqualTo(4096);
        assertThat(sample(text, "tidemark_replicas_committed_total{target=\"s3\",vm=\"web-1\"}"))
                .isEqualTo(1);
    }

    @Test
    void theSchedulersLateFiringIsMeasuredFromTheJobsItPublishes() {
        bus.publish(Topics.jobs("hv1"), "web-1", new Event("e1", "j1", T0.plusSeconds(20), job("web-1", "web", T0)));

        String text = metrics.scrape();

        assertThat(sample(text, "tidemark_scheduler_firing_lag_seconds_sum")).isEqualTo(20);
        assertThat(sample(text, "tidemark_scheduler_firing_lag_seconds_bucket{le=\"15.0\"}"))
                .isEqualTo(0);
        assertThat(sample(text, "tidemark_scheduler_firing_lag_seconds_bucket{le=\"30.0\"}"))
                .isEqualTo(1);
    }

    @Test
    void backlogPerTargetComponentsAndBuildInfoAreReadFromMemory() {
        Reconciler.TargetState s3 = new Reconciler.TargetState(
                "s3",
                Optional.of(T0),
                false,
                Optional.of("down"),
                Optional.empty(),
                Map.of("web-1", 3),
                Optional.of(T0),
                0,
                Optional.empty(),
                9000);
        EngineHealth health = new EngineHealth(List::of, () -> Map.of("s3", s3), "hv1", clock);
        health.started("worker");
        metrics.observe(() -> Map.of("s3", s3), health);
        metrics.observeBus(() -> List.of(
                new EventBus.SubscriptionState(
                        "tidemark-replicator-s3",
                        List.of(Topics.RESTORE_POINTS),
                        true,
                        0,
                        Optional.empty(),
                        Optional.empty(),
                        java.util.OptionalLong.of(7)),
                new EventBus.SubscriptionState(
                        "tidemark-rpo-hv1",
                        List.of(Topics.RESTORE_POINTS),
                        true,
                        0,
                        Optional.empty(),
                        Optional.empty())));

        String text = metrics.scrape();

        assertThat(sample(text, "tidemark_replication_backlog_points{target=\"s3\",vm=\"web-1\"}"))
                .isEqualTo(3);
        assertThat(sample(text, "tidemark_replication_backlog_bytes{target=\"s3\"}"))
                .isEqualTo(9000);
        assertThat(sample(
                        text, "tidemark_bus_consumer_lag_events{group=\"tidemark-replicator-s3\",role=\"replicator\"}"))
                .isEqualTo(7);
        assertThat(text).doesNotContain("tidemark_bus_consumer_lag_events{group=\"tidemark-rpo-hv1\""); // unknown yet
        assertThat(sample(text, "tidemark_component_ready{component=\"worker\"}"))
                .isEqualTo(1);
        assertThat(sample(text, "tidemark_component_ready{component=\"scheduler\"}"))
                .isEqualTo(0);
        assertThat(sample(text, "tidemark_component_ready{component=\"target:s3\"}"))
                .isEqualTo(0);
        assertThat(text).containsPattern("(?m)^tidemark_build_info\\{java_version=\"[^\"]+\",version=\"[^\"]+\"} 1");
    }

    @Test
    void everyCounterEndsInTotalAndEveryFamilyIsNamedWithItsUnit() {
        EngineMetrics all = new EngineMetrics(clock);
        EventBus metered = all.metering(recording);
        all.meteringJobs((t, e) -> {}).handle("jobs", new Event("e0", "j1", T0, job("web-1", "web", T0)));
        all.meteringReplication("s3", (t, e) -> {})
                .handle(
                        Topics.RESTORE_POINTS,
                        new Event(
                                "e1",
                                "j1",
                                T0,
                                new RestorePointCreated("web-1", "rp1", "web", List.of("s3"), T0, 1, 1)));
        metered.publish("jobs", "web-1", new Event("e2", "j2", T0, job("web-1", "web", T0)));
        metered.publish(
                Topics.RESTORE_POINTS,
                "web-1",
                new Event("e3", "j1", T0, new RestorePointCreated("web-1", "rp1", "web", List.of("s3"), T0, 1, 1)));
        metered.publish(
                Topics.JOB_STATUS,
                "web-1",
                new Event("e4", "j1", T0, JobFailed.of("web-1", "capture", FailureReason.VM_BUSY, "busy", true)));
        metered.publish(
                Topics.REPLICATION,
                "web-1",
                new Event("e5", "j1", T0, new ReplicaCommitted("web-1", "rp1", "s3", T0, 1, 1)));
        String text = all.scrape();

        assertThat(text).contains("# TYPE jvm_memory_used_bytes gauge").contains("# TYPE jvm_threads_current gauge");
        Matcher types = Pattern.compile("(?m)^# TYPE (tidemark_\\S+) (\\S+)$").matcher(text);
        int families = 0;
        while (types.find()) {
            families++;
            String name = types.group(1);
            switch (types.group(2)) {
                case "counter" -> assertThat(name).endsWith("_total");
                case "histogram" -> assertThat(name).endsWith("_seconds");
                default -> assertThat(name).doesNotEndWith("_total");
            }
        }
        assertThat(families).isGreaterThanOrEqualTo(11);
    }

    @Test
    void aScrapeAnswersAtOnceWhileACaptureHangsAndServesOldAndNewFamilies() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        Hypervisor hung = new Hypervisor() {
            @Override
            public List<VmInfo> list() {
                return List.of();
            }

            @Override
            public Capture capture(CaptureRequest request) {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new RetriableException("QEMU did not answer");
            }

            @Override
            public void close() {}
        };
        Hypervisor metered = metrics.metering(hung);
        bus.publish(
                Topics.RESTORE_POINTS,
                "web-1",
                new Event("e1", "j1", T0, new RestorePointCreated("web-1", "rp1", "web", List.of("s3"), T0, 1, 1)));
        CompletableFuture<Void> capture = CompletableFuture.runAsync(
                () -> metered.capture(new CaptureRequest("web-1", Optional.empty(), "tm-1", Path.of("/tmp"))));
        InMemoryInventory inventory = new InMemoryInventory();
        inventory.put("web-1", "hv1", Map.of());
        RpoTracker rpo = new RpoTracker(
                io.tidemark.policies.PolicySet.of(io.tidemark.policies.Policy.of(
                        "web",
                        io.tidemark.policies.VmSelector.ofNames("web-1"),
                        io.tidemark.policies.Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of())),
                inventory,
                clock);
        rpo.refreshInventory();
        try (MetricsServer server = new MetricsServer(
                new InetSocketAddress("127.0.0.1", 0), rpo, List::of, null, Map::of, clock, metrics)) {
            HttpClient http = HttpClient.newBuilder()
                    .connectTimeout(Duration.ofSeconds(5))
                    .build();
            HttpRequest scrape = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/metrics"))
                    .timeout(Duration.ofSeconds(5))
                    .build();
            http.send(scrape, HttpResponse.BodyHandlers.ofString()); // the client's own start-up is not the scrape's
            long start = System.nanoTime();
            HttpResponse<String> r = http.send(scrape, HttpResponse.BodyHandlers.ofString());

            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(1));
            assertThat(r.statusCode()).isEqualTo(200);
            assertThat(r.body())
                    .contains("tidemark_rpo_seconds{vm=\"web-1\",location=\"local\",policy=\"web\"}")
                    .contains("tidemark_jobs_succeeded_total{policy=\"web\",vm=\"web-1\"} 1.0")
                    .contains("tidemark_build_info{");
        } finally {
            release.countDown();
        }
        assertThatThrownBy(capture::join).hasCauseInstanceOf(RetriableException.class);
        assertThat(sample(metrics.scrape(), "tidemark_capture_failures_total{vm=\"web-1\"}"))
                .isEqualTo(1);
        assertThat(release.await(0, TimeUnit.SECONDS)).isTrue();
    }
}
