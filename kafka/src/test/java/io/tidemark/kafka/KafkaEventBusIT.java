package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Against a real KRaft broker started in this JVM. */
class KafkaEventBusIT {

    @TempDir
    static Path dir;

    static EmbeddedKafka kafka;
    static KafkaEventBus bus;

    @BeforeAll
    static void start() {
        kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
        bus = new KafkaEventBus(kafka.bootstrapServers(), Duration.ofMillis(100));
    }

    @AfterAll
    static void stop() {
        if (bus != null) {
            bus.close();
        }
        if (kafka != null) {
            kafka.close();
        }
    }

    private static Event event(String job) {
        return Event.of(job, Instant.now(), new JobFailed("vm", "capture", "x", false));
    }

    @Test
    void publishedEventsReachTheGroupAndOffsetsAreCommittedOnlyAfterTheHandler() {
        List<Event> got = new CopyOnWriteArrayList<>();
        AtomicInteger attempts = new AtomicInteger();
        Event first = event("j1");
        Event second = event("j2");
        bus.publish("t.roundtrip", "vm", first);
        try (EventBus.Subscription s = bus.subscribe("g.roundtrip", List.of("t.roundtrip"), (topic, e) -> {
            // the first delivery of j1 fails retriably: it must come again, before j2
            if (e.jobId().equals("j1") && attempts.getAndIncrement() == 0) {
                throw new RetriableException("not yet");
            }
            got.add(e);
        })) {
            bus.publish("t.roundtrip", "vm", second);
            await().atMost(Duration.ofSeconds(60)).until(() -> got.size() >= 2);
        }
        assertThat(got).containsExactly(first, second);
        assertThat(attempts.get()).isEqualTo(2);
    }

    @Test
    void twoConsumersOfOneGroupOnTwoPartitionsHandleTwoKeysAtOnceAndEachKeyInOrder() throws Exception {
        String topic = "t.parallel";
        bus.ensurePartitions(topic, 2);
        bus.ensurePartitions(topic, 2); // idempotent
        Object monitor = new Object();
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        AtomicInteger rounds = new AtomicInteger();
        java.util.Map<String, List<String>> byKey = new java.util.concurrent.ConcurrentHashMap<>();
        EventBus.EventHandler handler = (t, e) -> {
            synchronized (monitor) {
                most.accumulateAndGet(inside.incrementAndGet(), Math::max);
                monitor.notifyAll();
                // until the group has settled one consumer may hold both partitions: wait a little for
                // the other consumer to be inside a handler too (once seen, nobody waits any more)
                long deadline = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                while (most.get() < 2 && System.nanoTime() < deadline) {
                    try {
                        monitor.wait(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
                    } catch (InterruptedException ex) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
            byKey.computeIfAbsent(e.jobId().substring(0, 4), k -> new CopyOnWriteArrayList<>())
                    .add(e.jobId());
            inside.decrementAndGet();
        };
        try (EventBus.Subscription a = bus.subscribe("g.parallel", List.of(topic), handler);
                EventBus.Subscription b = bus.subscribe("g.parallel", List.of(topic), handler)) {
            // rounds of one event per key until two handlers ran at once (the group settles in seconds)
            for (int n = 0; n < 30 && most.get() < 2; n++) {
                for (int k = 0; k < 8; k++) {
                    bus.publish(topic, "vm-" + k, event("vm-" + k + "/" + n));
                }
                int expected = 8 * (n + 1);
                await().atMost(Duration.ofSeconds(60))
                        .until(() ->
                                byKey.values().stream().mapToInt(List::size).sum() == expected);
                rounds.set(n + 1);
            }
        }
        assertThat(most.get()).as("handlers running at once").isEqualTo(2);
        for (int k = 0; k < 8; k++) {
            String key = "vm-" + k;
            assertThat(byKey.get(key))
                    .as("the events of %s, in order", key)
                    .containsExactlyElementsOf(java.util.stream.IntStream.range(0, rounds.get())
                            .mapToObj(n -> key + "/" + n)
                            .toList());
        }
    }

    @Test
    void aPermanentFailureGoesToTheDeadLetterTopicAndDoesNotBlockTheNext() {
        List<Event> ok = new CopyOnWriteArrayList<>();
        List<Event> dead = new CopyOnWriteArrayList<>();
        try (EventBus.Subscription dl =
                        bus.subscribe("g.dl-watch", List.of(Topics.DEAD_LETTER), (t, e) -> dead.add(e));
                EventBus.Subscription s = bus.subscribe("g.poison", List.of("t.poison"), (t, e) -> {
                    if (e.jobId().equals("bad")) {
                        throw new PermanentException("cannot handle");
                    }
                    ok.add(e);
                })) {
            bus.publish("t.poison", "vm", event("bad"));
            bus.publish("t.poison", "vm", event("good"));
            await().atMost(Duration.ofSeconds(60)).until(() -> ok.size() == 1 && !dead.isEmpty());
        }
        assertThat(ok).extracting(Event::jobId).containsExactly("good");
        assertThat(dead).extracting(Event::jobId).contains("bad");
    }

    @Test
    void anUnreachableBrokerIsARetriableErrorNamingTheAddress() {
        try (KafkaEventBus nowhere = new KafkaEventBus("127.0.0.1:1")) {
            assertThatThrownBy(() -> nowhere.checkReachable(Duration.ofSeconds(2)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("127.0.0.1:1");
        }
    }
}
