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
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
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
    void eventsPublishedAsynchronouslyAreAllAcknowledgedAndDelivered() {
        List<java.util.concurrent.CompletableFuture<Void>> sent = new java.util.ArrayList<>();
        for (int i = 0; i < 300; i++) {
            sent.add(bus.publishAsync("t.async", "vm-" + (i % 7), event("a" + i)));
        }
        java.util.concurrent.CompletableFuture.allOf(sent.toArray(java.util.concurrent.CompletableFuture[]::new))
                .join();
        List<String> got = new CopyOnWriteArrayList<>();
        try (EventBus.Subscription s = bus.subscribe("g.async", List.of("t.async"), (topic, e) -> got.add(e.jobId()))) {
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> got.size() >= 300);
        }
        assertThat(got).hasSize(300).doesNotHaveDuplicates();
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
                                byKey.values().stream().mapToInt(List::size).sum() >= expected);
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

    /** 100 ms first backoff, 3 attempts, 1 s to drain. */
    private static final SubscriptionSettings QUICK = new SubscriptionSettings(
            3,
            Duration.ofMillis(100),
            Duration.ofSeconds(1),
            Duration.ofMinutes(10),
            Duration.ofSeconds(1),
            Duration.ofSeconds(1),
            Duration.ofMinutes(1),
            500);

    private static long committedOffset(String group, TopicPartition tp) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            OffsetAndMetadata o = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata()
                    .get(30, TimeUnit.SECONDS)
                    .get(tp);
            return o == null ? -1 : o.offset();
        }
    }

    private static void awaitRelease(CountDownLatch release) {
        try {
            release.await(2, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void aBlockedKeyHoldsOnlyItsLaneTheOffsetStaysAtItsEventAndANewMemberGetsItAgain() throws Exception {
        String topic = "t.lanes"; // one partition: a and b share it
        TopicPartition tp = new TopicPartition(topic, 0);
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        try (KafkaEventBus quick = new KafkaEventBus(kafka.bootstrapServers(), QUICK, Clock.systemUTC())) {
            quick.publish(topic, "vm-a", event("a1"));
            for (int i = 1; i <= 3; i++) {
                quick.publish(topic, "vm-b", event("b" + i));
            }
            EventBus.Subscription first = quick.subscribeByKey("g.lanes", List.of(topic), 4, (t, e) -> {
                if (e.jobId().equals("a1")) {
                    awaitRelease(release); // a VM that hangs
                }
                handled.add(e.jobId());
            });
            await().atMost(Duration.ofSeconds(60)).until(() -> handled.size() == 3);
            assertThat(handled).as("b's events pass a's, in order").containsExactly("b1", "b2", "b3");
            assertThat(quick.subscriptions()).singleElement().satisfies(st -> assertThat(st.running())
                    .isTrue());
            // a1 still runs and the partition's end is fetched: one event not handled yet
            await().atMost(Duration.ofSeconds(30))
                    .until(() -> quick.subscriptions().get(0).lag().orElse(-1) == 1);
            first.close(); // a1 still runs: close waits 1 s, then leaves it
            assertThat(committedOffset("g.lanes", tp))
                    .as("committed up to a1 only")
                    .isEqualTo(0);

            List<String> again = new CopyOnWriteArrayList<>();
            try (EventBus.Subscription second =
                    quick.subscribeByKey("g.lanes", List.of(topic), 4, (t, e) -> again.add(e.jobId()))) {
                await().atMost(Duration.ofSeconds(90)).until(() -> again.size() >= 4);
            }
            // a1 again, and b's events after it on the partition (beyond the committed offset): keys at once
            assertThat(again).as("a1 is delivered again").containsExactlyInAnyOrder("a1", "b1", "b2", "b3");
            assertThat(again).containsSubsequence("b1", "b2", "b3");
            await().atMost(Duration.ofSeconds(30)).until(() -> committedOffset("g.lanes", tp) == 4);
        } finally {
            release.countDown();
        }
    }

    @Test
    void aRetriableFailureIsRetriedABoundedNumberOfTimesThenDeadLetteredSayingWhy() throws Exception {
        String topic = "t.retries";
        List<String> ok = new CopyOnWriteArrayList<>();
        AtomicInteger attempts = new AtomicInteger();
        try (KafkaEventBus quick = new KafkaEventBus(kafka.bootstrapServers(), QUICK, Clock.systemUTC());
                EventBus.Subscription s = quick.subscribe("g.retries", List.of(topic), (t, e) -> {
                    if (e.jobId().equals("never")) {
                        attempts.incrementAndGet();
                        throw new RetriableException("target unreachable");
                    }
                    ok.add(e.jobId());
                })) {
            quick.publish(topic, "vm", event("never"));
            quick.publish(topic, "vm", event("after"));
            await().atMost(Duration.ofSeconds(60)).until(() -> ok.contains("after"));
        }
        assertThat(attempts.get()).isEqualTo(3);
        Map<String, String> headers = new HashMap<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        try (KafkaConsumer<String, byte[]> dl =
                new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer())) {
            dl.assign(List.of(new TopicPartition(Topics.DEAD_LETTER, 0)));
            dl.seekToBeginning(dl.assignment());
            await().atMost(Duration.ofSeconds(60)).until(() -> {
                for (ConsumerRecord<String, byte[]> r : dl.poll(Duration.ofMillis(500))) {
                    Map<String, String> h = new HashMap<>();
                    r.headers().forEach(x -> h.put(x.key(), new String(x.value(), StandardCharsets.UTF_8)));
                    if (h.getOrDefault("tidemark.source", "").startsWith(topic + "/")) {
                        headers.putAll(h);
                    }
                }
                return !headers.isEmpty();
            });
        }
        assertThat(headers)
                .containsEntry("tidemark.error", "retries exhausted after 3 attempts: target unreachable")
                .containsEntry("tidemark.attempts", "3")
                .containsEntry("tidemark.group", "g.retries")
                .containsEntry("tidemark.source", topic + "/0/0");
    }

    @Test
    void anUnreachableBrokerIsARetriableErrorNamingTheAddress() {
        try (KafkaEventBus nowhere = new KafkaEventBus("127.0.0.1:1")) {
            assertThatThrownBy(() -> nowhere.checkReachable(Duration.ofSeconds(2)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("127.0.0.1:1");
        }
    }

    @Test
    void startUpWaitsForABrokerThatComesUpAfterTheFirstAttemptFailed() throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort(); // closed again: the first attempt finds nothing there
        }
        java.util.concurrent.atomic.AtomicInteger retries = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicReference<EmbeddedKafka> late =
                new java.util.concurrent.atomic.AtomicReference<>();
        int brokerPort = port;
        try (KafkaEventBus bus = new KafkaEventBus("127.0.0.1:" + port)) {
            bus.awaitReachable(Duration.ofMinutes(3), Duration.ofSeconds(3), () -> {
                if (retries.getAndIncrement() == 0) { // the broker starts only once an attempt failed
                    late.set(EmbeddedKafka.start(dir.resolve("late-kafka"), brokerPort, 0));
                }
            });
        } finally {
            if (late.get() != null) {
                late.get().close();
            }
        }
        assertThat(retries.get()).as("it failed at least once, then waited").isPositive();
        assertThat(late.get()).isNotNull();
    }

    @Test
    void patienceRunsOutWithTheLastAttemptsError() {
        try (KafkaEventBus nowhere = new KafkaEventBus("127.0.0.1:1")) {
            java.util.concurrent.atomic.AtomicInteger retries = new java.util.concurrent.atomic.AtomicInteger();
            assertThatThrownBy(() -> nowhere.awaitReachable(
                            Duration.ofSeconds(5), Duration.ofSeconds(1), retries::incrementAndGet))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("127.0.0.1:1");
            assertThat(retries.get()).as("it tried again before giving up").isPositive();
        }
    }

    @Test
    void aGroupInUseIsReportedWithItsMembersAndIsFreeOnceTheyLeave() {
        assertThat(bus.groupMembers("g.never-used")).isEmpty(); // a group no process ever joined
        bus.awaitGroupFree("g.never-used", Duration.ofSeconds(1), "unused");
        EventBus.Subscription first = bus.subscribe("g.claimed", List.of("t.claimed"), (t, e) -> {});
        try (KafkaEventBus other = new KafkaEventBus(kafka.bootstrapServers())) {
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> !other.groupMembers("g.claimed").isEmpty());
            assertThat(other.groupMembers("g.claimed"))
                    .singleElement()
                    .asString()
                    .startsWith("tidemark-")
                    .contains("-pid" + ProcessHandle.current().pid());
            assertThatThrownBy(() -> other.awaitGroupFree("g.claimed", Duration.ofSeconds(1), "stop the other worker"))
                    .isInstanceOf(io.tidemark.core.PermanentException.class)
                    .hasMessageContaining("consumer group g.claimed")
                    .hasMessageContaining("is in use by tidemark-")
                    .hasMessageContaining("stop the other worker");
            first.close(); // leaves the group at once
            other.awaitGroupFree("g.claimed", Duration.ofSeconds(60), "unused");
            assertThat(other.groupMembers("g.claimed")).isEmpty();
        }
    }
}
