package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.postgres.PostgresCluster;
import io.tidemark.testkit.qemu.QemuVm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A small fleet on one machine, each role a {@code tidemark run --roles ...} process of its own (ADR
 * 13): a worker host (worker and replicator) with a real QEMU VM, two scheduler processes sharing a
 * Quartz store on a real PostgreSQL (tables created by the engine), a Kafka broker that none of them
 * embeds. Every firing is published once however many schedulers run; killing one with SIGKILL
 * loses no later firing; a second worker claiming the same host name refuses to start and says why.
 */
class EngineRolesIT {

    private static final String VM = "vm1";
    private static final String HOST = "hw1";

    @TempDir
    Path dir;

    @Test
    void twoSchedulersFireEachFiringOnceAndASecondWorkerForOneHostRefusesToStart() throws Exception {
        Path qmp = Files.createDirectories(dir.resolve("q"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("p.yaml"),
                "name: every-10s\nvms:\n  names: [vm1]\nschedule:\n  interval: 10s\nrpo: 1h\ntargets: []\n");
        List<Process> processes = new ArrayList<>();
        try (PostgresCluster postgres = PostgresCluster.start("scheduler");
                EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                KafkaEventBus observer = new KafkaEventBus(kafka.bootstrapServers());
                QemuVm vm = QemuVm.start(qmp, VM, 16L << 20)) {
            String common = "kafka: " + kafka.bootstrapServers() + "\nqmpDir: " + qmp + "\npolicies: " + policies
                    + "\nmetrics: \"127.0.0.1:0\"\n";
            String jdbc = "scheduler:\n  jdbc:\n    url: " + postgres.jdbcUrl() + "\n    user: " + PostgresCluster.USER
                    + "\n    checkinInterval: 1s\nroles: [scheduler]\n";
            Path workerData = dir.resolve("worker");
            Process worker = start(
                    "worker",
                    config(
                            "worker",
                            common + "host: " + HOST + "\ndata: " + workerData + "\nroles: [worker, replicator]\n"));
            processes.add(worker);
            Map<String, AtomicInteger> published = new ConcurrentHashMap<>();
            Map<String, Instant> firstSeen = new ConcurrentHashMap<>();
            try (EventBus.Subscription jobs =
                    observer.subscribe("test-observer", List.of(Topics.jobs(HOST)), (topic, event) -> {
                        published
                                .computeIfAbsent(event.jobId(), k -> new AtomicInteger())
                                .incrementAndGet();
                        firstSeen.putIfAbsent(event.jobId(), Instant.now());
                    })) {
                await().atMost(Duration.ofSeconds(180))
                        .pollInterval(Duration.ofMillis(500))
                        .failFast(() ->
                                assertThat(worker.isAlive()).as(log("worker")).isTrue())
                        .until(() -> log("worker").contains("engine up on host " + HOST));
                Process first =
                        start("s1", config("s1", common + "host: s1\ndata: " + dir.resolve("s1") + "\n" + jdbc));
                Process second =
                        start("s2", config("s2", common + "host: s2\ndata: " + dir.resolve("s2") + "\n" + jdbc));
                processes.add(first);
                processes.add(second);
                // the same host name a second time: the first worker is alive, so this one must refuse
                Process twin = start(
                        "twin",
                        config(
                                "twin",
                                common + "host: " + HOST + "\ndata: " + dir.resolve("twin") + "\nroles: [worker]\n"));
                processes.add(twin);

                await().atMost(Duration.ofSeconds(240))
                        .pollInterval(Duration.ofMillis(500))
                        .failFast(() -> assertThat(first.isAlive() && second.isAlive())
                                .as("schedulers run; s1:%n%s%ns2:%n%s", log("s1"), log("s2"))
                                .isTrue())
                        .conditionEvaluationListener(c -> {
                            if (c.getRemainingTimeInMS() < 1000) {
                                System.out.println(
                                        "s1:\n" + log("s1") + "\ns2:\n" + log("s2") + "\nworker:\n" + log("worker"));
                            }
                        })
                        .until(() -> published.size() >= 4);
                assertThat(published).allSatisfy((job, times) -> assertThat(times.get())
                        .as("job %s published once though two schedulers run", job)
                        .isEqualTo(1));

                first.destroyForcibly(); // SIGKILL: Quartz declares it failed after its check-in lapses
                assertThat(first.waitFor(60, TimeUnit.SECONDS)).isTrue();
                Instant killed = Instant.now();
                await().atMost(Duration.ofSeconds(180))
                        .pollInterval(Duration.ofMillis(500))
                        .until(() -> firstSeen.values().stream()
                                        .filter(t -> t.isAfter(killed))
                                        .count()
                                >= 2);
                assertThat(published).allSatisfy((job, times) -> assertThat(times.get())
                        .as("job %s published once", job)
                        .isEqualTo(1));

                assertThat(twin.waitFor(180, TimeUnit.SECONDS))
                        .as("the second worker for %s gave up", HOST)
                        .isTrue();
                assertThat(twin.exitValue()).as(log("twin")).isNotZero();
                assertThat(log("twin"))
                        .contains("another worker serves host " + HOST)
                        .contains("tidemark-worker-" + HOST);
            }
            // the worker host committed the points of those jobs in its own repository, one per job
            await().atMost(Duration.ofSeconds(120))
                    .until(() -> points(workerData).size() >= 4);
            List<Manifest> points = points(workerData);
            assertThat(points.stream().map(Manifest::jobId).distinct().count()).isEqualTo(points.size());
            assertThat(published.keySet())
                    .containsAll(points.stream().map(Manifest::jobId).toList());
        } finally {
            for (Process p : processes) {
                p.destroyForcibly();
                p.waitFor(60, TimeUnit.SECONDS);
            }
        }
    }

    private Path config(String name, String yaml) throws IOException {
        return Files.writeString(dir.resolve(name + ".yaml"), yaml);
    }

    private String log(String name) {
        try {
            Path log = dir.resolve(name + ".log");
            return Files.exists(log) ? Files.readString(log) : "";
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    private Process start(String name, Path config) throws IOException {
        return new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx384m",
                        // C1 only and the serial GC, as the soak's and the topology's engines: a short-lived engine
                        // JVM then starts in far less CPU (13-28 s instead of 37-40 s to 'running' at load 30-40)
                        "-XX:+UseSerialGC",
                        "-XX:TieredStopAtLevel=1",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Main.class.getName(),
                        "run",
                        "--config",
                        config.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile())
                .start();
    }

    private static List<Manifest> points(Path data) {
        Path repo = data.resolve("repo");
        if (!Files.isDirectory(repo)) {
            return List.of();
        }
        try (FileObjectTarget target = new FileObjectTarget(repo)) {
            if (!target.exists(ObjectKeys.CONFIG)) {
                return List.of();
            }
            return Repository.open(target).manifests(VM);
        }
    }
}
