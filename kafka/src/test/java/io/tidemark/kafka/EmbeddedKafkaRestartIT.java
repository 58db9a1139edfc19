package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import java.io.IOException;
import java.io.Reader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded broker reopens its data directory after a clean close and after a kill. */
class EmbeddedKafkaRestartIT {

    @TempDir
    Path dir;

    private static Event event(String job) {
        return Event.of(job, Instant.now(), new JobFailed("vm", "capture", "x", false));
    }

    /** Every event of {@code topic}, read by a new group, once {@code expected} have arrived. */
    private static List<String> jobsOn(KafkaEventBus bus, String topic, String group, int expected) {
        List<String> got = new CopyOnWriteArrayList<>();
        try (EventBus.Subscription s = bus.subscribe(group, List.of(topic), (t, e) -> got.add(e.jobId()))) {
            await().atMost(Duration.ofSeconds(90)).until(() -> got.size() >= expected);
        }
        return List.copyOf(got);
    }

    @Test
    void aClosedBrokerReopensWithItsClusterIdTopicsAndCommittedOffsets() {
        Path data = dir.resolve("kafka");
        String clusterId;
        String bootstrap;
        try (EmbeddedKafka kafka = EmbeddedKafka.start(data, 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            clusterId = kafka.clusterId();
            bootstrap = kafka.bootstrapServers();
            bus.publish("t.restart", "vm", event("before-1"));
            bus.publish("t.restart", "vm", event("before-2"));
            assertThat(jobsOn(bus, "t.restart", "g.restart", 2)).containsExactly("before-1", "before-2");
            await().atMost(Duration.ofSeconds(60)).until(bus.caughtUpCheck("g.restart", "t.restart")::getAsBoolean);
        }

        try (EmbeddedKafka kafka = EmbeddedKafka.start(data, 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            assertThat(kafka.clusterId()).isEqualTo(clusterId);
            assertThat(kafka.bootstrapServers())
                    .as("the free port of the last start is reused")
                    .isEqualTo(bootstrap);
            bus.publish("t.restart", "vm", event("after"));
            // the group's committed offsets survived: it gets only the new event
            assertThat(jobsOn(bus, "t.restart", "g.restart", 1)).containsExactly("after");
            // and the topic kept its events
            assertThat(jobsOn(bus, "t.restart", "g.fresh", 3)).containsExactly("before-1", "before-2", "after");
        }
    }

    @Test
    void takenPortsAreReplacedAndTheQuorumAcceptsTheNewControllerPort() throws IOException {
        Path data = dir.resolve("kafka");
        try (EmbeddedKafka kafka = EmbeddedKafka.start(data, 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            bus.publish("t.ports", "vm", event("one"));
        }
        Properties last = new Properties();
        try (Reader r = Files.newBufferedReader(data.resolve(EmbeddedKafka.ENDPOINT_FILE))) {
            last.load(r);
        }
        int oldBroker = Integer.parseInt(last.getProperty("broker.port"));
        int oldController = Integer.parseInt(last.getProperty("controller.port"));
        try (ServerSocket a = new ServerSocket(oldBroker, 1, InetAddress.getLoopbackAddress());
                ServerSocket b = new ServerSocket(oldController, 1, InetAddress.getLoopbackAddress());
                EmbeddedKafka kafka = EmbeddedKafka.start(data, 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            assertThat(kafka.bootstrapServers()).isNotEqualTo("127.0.0.1:" + oldBroker);
            Properties now = new Properties();
            try (Reader r = Files.newBufferedReader(data.resolve(EmbeddedKafka.ENDPOINT_FILE))) {
                now.load(r);
            }
            assertThat(Integer.parseInt(now.getProperty("controller.port"))).isNotEqualTo(oldController);
            bus.publish("t.ports", "vm", event("two"));
            assertThat(jobsOn(bus, "t.ports", "g.ports", 2)).containsExactly("one", "two");
        }
    }

    @Test
    void aKilledBrokerReopensWithItsTopicsAndCommittedOffsets() throws Exception {
        Path data = dir.resolve("kafka");
        Path out = dir.resolve("child.log");
        Process child = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m",
                        "-cp",
                        System.getProperty("java.class.path"),
                        EmbeddedKafkaChild.class.getName(),
                        data.toString(),
                        "t.killed",
                        "3")
                .redirectErrorStream(true)
                .redirectOutput(out.toFile())
                .start();
        String ready;
        try {
            await().atMost(Duration.ofMinutes(3))
                    .until(() ->
                            !child.isAlive() || Files.readAllLines(out).stream().anyMatch(l -> l.startsWith("READY ")));
            assertThat(child.isAlive())
                    .as("the child broker runs; its output: %s", out)
                    .isTrue();
            ready = Files.readAllLines(out).stream()
                    .filter(l -> l.startsWith("READY "))
                    .findFirst()
                    .orElseThrow();
        } finally {
            child.destroyForcibly(); // SIGKILL: no shutdown hook, no clean shutdown marker
            child.waitFor(60, TimeUnit.SECONDS);
        }
        assertThat(child.isAlive()).isFalse();
        String clusterId = ready.split(" ")[2];

        try (EmbeddedKafka kafka = EmbeddedKafka.start(data, 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            assertThat(kafka.clusterId()).isEqualTo(clusterId);
            bus.publish("t.killed", "vm", event("after"));
            assertThat(jobsOn(bus, "t.killed", "t.killed-group", 1)).containsExactly("after");
            assertThat(jobsOn(bus, "t.killed", "g.fresh", 4)).containsExactly("job-0", "job-1", "job-2", "after");
        }
    }
}
