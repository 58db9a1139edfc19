package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.replicator.Reconciler;
import io.tidemark.repository.Repository;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real engine (embedded KRaft Kafka, no VMs) replicating to a real S3 target (S3Proxy behind a
 * fault-injecting proxy) and a file target, while the S3 target is down for longer than its retry
 * deadline. Restore points are committed to the primary and announced on the bus as a worker does.
 * Asserts: scrapes of /metrics and /readyz answer in under a second and mark the target (its errors by
 * kind, the replication failures, its readiness); {@code
 * status} shows the local and healthy rows and marks the down target; every point — one that
 * existed before the target was added, and those dead-lettered during the outage — reaches the
 * target without an operator, its manifest written exactly once.
 */
class TargetOutageIT {

    private static final String VM = "app-vm";
    private static final String BUCKET = "offsite";
    private static final Duration RETRY_DEADLINE = Duration.ofSeconds(5);

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final Random random = new Random(5);

    @Test
    void everyPointReachesTheTargetOnceAfterAnOutageWhileScrapesAndStatusAnswer() throws Exception {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                FaultyHttpProxy proxy = FaultyHttpProxy.to(s3.endpoint())
                        .faults(FaultyHttpProxy.Fault.SLOW_DOWN)
                        .faultRate(0)
                        .build()
                        .start();
                S3ObjectTarget direct = direct(s3)) {
            s3.createBucket(BUCKET);
            Path configFile = config(proxy.endpoint(), s3);
            EngineConfig config = EngineConfig.load(configFile);
            // a point from before the target was added: never announced, only the reconciliation ships it
            Repository before = Repository.openOrInit(
                    new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo"))),
                    RepositoryConfig.defaults());
            Manifest old = commit(before, Optional.empty(), Instant.now().minusSeconds(600));

            List<ReplicaCommitted> replicated = new CopyOnWriteArrayList<>();
            List<JobFailed> failed = new CopyOnWriteArrayList<>();
            try (Engine engine = Engine.start(config, io.tidemark.workers.CaptureHooks.NONE, Clock.systemUTC());
                    EventBus.Subscription watch = engine.bus()
                            .subscribe("it-watch", List.of(Topics.REPLICATION, Topics.JOB_STATUS), (t, e) -> {
                                if (e.payload() instanceof ReplicaCommitted r) {
                                    replicated.add(r);
                                } else if (e.payload() instanceof JobFailed f) {
                                    failed.add(f);
                                }
                            })) {
                Repository primary = engine.repository();
                await().atMost(Duration.ofSeconds(60)).until(() -> committedOn(replicated, "s3", old.id()));

                Manifest first = announce(engine, commit(primary, Optional.of(old), Instant.now()));
                await().atMost(Duration.ofSeconds(60)).until(() -> committedOn(replicated, "s3", first.id()));

                proxy.faultRate(1.0); // S3 answers every request with 503 SlowDown from now on
                Manifest during1 = announce(engine, commit(primary, Optional.of(first), Instant.now()));
                // the event path gives up after the retry deadline: dead-lettered
                await().atMost(Duration.ofSeconds(60)).until(() -> failed.stream()
                        .anyMatch(
                                f -> f.stage().equals("replicate") && f.error().contains(during1.id())));
                Manifest during2 = announce(engine, commit(primary, Optional.of(during1), Instant.now()));
                await().atMost(Duration.ofSeconds(60)).until(() -> failed.stream()
                        .anyMatch(
                                f -> f.stage().equals("replicate") && f.error().contains(during2.id())));

                // health, metrics: from memory, at once, the target marked
                int port = engine.metricsPort().orElseThrow();
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> get(port, "/readyz").body().contains("\"target:s3\":{\"ready\":false"));
                for (String path : List.of("/metrics", "/readyz", "/healthz")) {
                    long start = System.nanoTime();
                    HttpResponse<String> r = get(port, path);
                    assertThat(Duration.ofNanos(System.nanoTime() - start))
                            .as(
                                    "%s answers from memory, well within the target's retry deadline, while the"
                                            + " target is down",
                                    path)
                            .isLessThan(RETRY_DEADLINE.dividedBy(2));
                    switch (path) {
                        case "/metrics" ->
                            assertThat(r.body())
                                    .contains("tidemark_target_up{target=\"s3\"} 0")
                                    .contains("tidemark_target_up{target=\"vault\"} 1")
                                    // the event path gave up on the down target: its errors and the failures
                                    .containsPattern("(?m)^tidemark_target_errors_total\\{kind=\"retriable\","
                                            + "target=\"s3\"} [1-9]")
                                    .containsPattern("(?m)^tidemark_jobs_failed_total\\{policy=\"unknown\","
                                            + "reason=\"target_failed\",stage=\"replicate\",vm=\"app-vm\"} [1-9]")
                                    .contains("tidemark_replication_duration_seconds_count{outcome=\"failed\","
                                            + "target=\"s3\"}")
                                    .contains("tidemark_component_ready{component=\"target:s3\"} 0")
                                    .contains("jvm_threads_current");
                        case "/readyz" -> {
                            assertThat(r.statusCode()).isEqualTo(503);
                            assertThat(r.body()).contains("\"target:vault\":{\"ready\":true");
                        }
                        default -> assertThat(r.statusCode()).isEqualTo(200);
                    }
                }

                // status: every readable location, the down one marked, exit "partial"
                std.reset();
                int exit = Main.execute("status", "--config", configFile.toString(), "--timeout", "10s");
                assertThat(exit).as(std.err()).isEqualTo(StatusCommand.EXIT_PARTIAL);
                assertThat(std.out())
                        .containsPattern(VM + " +local +app +\\d{4}-")
                        .containsPattern(VM + " +vault +app +\\d{4}-")
                        .containsPattern(VM + " +s3 +app +UNREACHABLE")
                        .containsPattern("s3 +UNREACHABLE +\\? +\\? +.*check");

                proxy.faultRate(0); // the target is back: no operator does anything
                await().atMost(Duration.ofSeconds(120))
                        .until(() -> committedOn(replicated, "s3", during1.id())
                                && committedOn(replicated, "s3", during2.id()));
                Repository remote = Repository.open(direct);
                for (Manifest m : List.of(old, first, during1, during2)) {
                    assertThat(remote.hasManifest(VM, m.id())).as(m.id()).isTrue();
                    String key = "/" + BUCKET + "/tm/" + ObjectKeys.manifest(VM, m.id());
                    assertThat(proxy.exchanges().stream()
                                    .filter(x ->
                                            x.method().equals("PUT") && x.path().equals(key) && x.reachedUpstream()))
                            .as("manifest PUTs of %s that reached S3", m.id())
                            .hasSize(1);
                    assertThat(replicated.stream()
                                    .filter(r -> r.target().equals("s3")
                                            && r.restorePointId().equals(m.id())
                                            && r.objectsSent() > 0))
                            .as("shipments of %s", m.id())
                            .hasSize(1);
                }
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> engine.reconciler().states().get("s3").reachable());
                assertThat(get(port, "/metrics").body()).contains("tidemark_target_up{target=\"s3\"} 1");
            }
        }
    }

    @Test
    void theEngineStartsWhileATargetIsDownAndShipsToItWhenItAnswers() throws Exception {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                FaultyHttpProxy proxy = FaultyHttpProxy.to(s3.endpoint())
                        .faults(FaultyHttpProxy.Fault.SLOW_DOWN)
                        .faultRate(1.0) // down from the start: every request gets 503 SlowDown
                        .build()
                        .start();
                S3ObjectTarget direct = direct(s3)) {
            s3.createBucket(BUCKET);
            Path configFile = config(proxy.endpoint(), s3);
            Repository before = Repository.openOrInit(
                    new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo"))),
                    RepositoryConfig.defaults());
            Manifest old = commit(before, Optional.empty(), Instant.now().minusSeconds(60));
            // on main this threw after the retry deadline: a restart during an outage ended protection
            try (Engine engine = Engine.start(
                    EngineConfig.load(configFile), io.tidemark.workers.CaptureHooks.NONE, Clock.systemUTC())) {
                int port = engine.metricsPort().orElseThrow();
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> get(port, "/readyz").body().contains("\"target:s3\":{\"ready\":false"));
                // the healthy target is fed meanwhile
                await().atMost(Duration.ofSeconds(120)).ignoreExceptions().until(() -> Repository.open(
                                new FileObjectTarget(dir.resolve("vault")))
                        .hasManifest(VM, old.id()));

                proxy.faultRate(0); // the target is back
                await().atMost(Duration.ofSeconds(120)).ignoreExceptions().until(() -> Repository.open(direct)
                        .hasManifest(VM, old.id()));
            }
        }
    }

    @Test
    void anUnreachableEndpointAtStartUpIsReportedByNameWithoutItsSecretAndTheEngineRuns() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"),
                "name: web\nvms: {names: [a]}\nschedule: {interval: 1m}\nrpo: 1h\ntargets: [offsite]\n");
        Path secret = Files.writeString(dir.resolve("secret"), "s3cr3t-value");
        Path config = Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                host: hv1
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                targets:
                  offsite:
                    type: s3
                    endpoint: http://127.0.0.1:1
                    region: us-east-1
                    bucket: backups
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                """
                        .formatted(
                                dir.resolve("data"),
                                Files.createDirectories(dir.resolve("q")),
                                policies,
                                secret,
                                secret));
        // on main this start-up failed (exit 3): a restart while a target is unreachable ended protection
        try (Engine engine =
                Engine.start(EngineConfig.load(config), io.tidemark.workers.CaptureHooks.NONE, Clock.systemUTC())) {
            await().atMost(Duration.ofSeconds(60)).until(() -> engine.reconciler()
                    .states()
                    .get("offsite")
                    .probedAt()
                    .isPresent());
            Reconciler.TargetState state = engine.reconciler().states().get("offsite");
            assertThat(state.reachable()).isFalse();
            assertThat(state.probeError().orElseThrow()).contains("127.0.0.1:1").doesNotContain("s3cr3t-value");
            String readyz = get(engine.metricsPort().orElseThrow(), "/readyz").body();
            assertThat(readyz).contains("\"target:offsite\":{\"ready\":false").doesNotContain("s3cr3t-value");
        }
    }

    private static boolean committedOn(List<ReplicaCommitted> replicated, String target, String id) {
        return replicated.stream()
                .anyMatch(r -> r.target().equals(target) && r.restorePointId().equals(id));
    }

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                                .timeout(Duration.ofSeconds(10))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }

    /** Announces {@code m} as the worker does once it committed it. */
    private static Manifest announce(Engine engine, Manifest m) {
        engine.bus()
                .publish(
                        Topics.RESTORE_POINTS,
                        VM,
                        Event.of(
                                m.jobId(),
                                Instant.now(),
                                new RestorePointCreated(
                                        VM, m.id(), "app", List.of("s3", "vault"), m.capturedAt(), 0, 0)));
        return m;
    }

    /** Commits a small restore point of {@link #VM} (some random chunks) to {@code repo}. */
    private Manifest commit(Repository repo, Optional<Manifest> parent, Instant captured) {
        int chunk = repo.config().chunkSize();
        long size = 8L * chunk;
        var index = repo.newIndex(
                size, parent.map(p -> repo.root(Digest.fromHex(p.disks().get(0).index()))));
        byte[] data = new byte[chunk];
        for (int c = 0; c < 2; c++) {
            random.nextBytes(data);
            index.set(random.nextInt(8), repo.putChunk(data, chunk).digest());
        }
        Digest root = index.finish();
        String id = RestorePointIds.next(captured, random);
        Manifest m = new Manifest(
                1,
                id,
                VM,
                "hv1",
                "job-" + id,
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "app",
                parent.map(Manifest::id),
                List.of(new DiskEntry(
                        "sda",
                        size,
                        chunk,
                        root.hex(),
                        "tm-" + id,
                        parent.isPresent()
                                ? Optional.empty()
                                : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }

    private Path config(URI s3Endpoint, EmbeddedS3 s3) throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("app.yaml"),
                """
                name: app
                vms: {names: [%s]}
                schedule: {interval: 1h}
                rpo: 1h
                targets: [s3, vault]
                """
                        .formatted(VM));
        Path secrets = Files.createDirectories(dir.resolve("secrets"));
        Files.writeString(secrets.resolve("s3.access"), s3.accessKey());
        Files.writeString(secrets.resolve("s3.secret"), s3.secretKey());
        Path configFile = dir.resolve("tidemark.yaml");
        Files.writeString(
                configFile,
                """
                host: hv1
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                targets:
                  s3:
                    type: s3
                    endpoint: %s
                    region: us-east-1
                    bucket: %s
                    prefix: tm
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: %ds
                  vault:
                    type: file
                    path: %s
                """
                        .formatted(
                                dir.resolve("data"),
                                qmpDir,
                                policies,
                                s3Endpoint,
                                BUCKET,
                                secrets.resolve("s3.access"),
                                secrets.resolve("s3.secret"),
                                RETRY_DEADLINE.toSeconds(),
                                Files.createDirectories(dir.resolve("vault"))));
        return configFile;
    }

    /** The test's bucket straight at S3Proxy, not through the fault proxy. */
    private static S3ObjectTarget direct(EmbeddedS3 s3) {
        S3TargetSpec spec = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(BUCKET)
                .prefix("tm")
                .pathStyle(true)
                .build();
        return S3ObjectTarget.create(spec, S3Credentials.of(s3.accessKey(), s3.secretKey()));
    }
}
