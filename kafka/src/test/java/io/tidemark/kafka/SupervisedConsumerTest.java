package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus.EventHandler;
import io.tidemark.core.bus.EventBus.SubscriptionState;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.format.EventCodec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The subscription's supervision, retries, commits and memory bound, on kafka-clients' MockConsumer. */
class SupervisedConsumerTest {

    private static final String TOPIC = "t";
    private static final TopicPartition TP = new TopicPartition(TOPIC, 0);
    private static final Instant T0 = Instant.parse("2026-12-01T10:00:00Z");

    /** Fast settings: 3 attempts 1 ms apart, 2 s to drain, restarts 10 ms apart up to 40 ms. */
    private static final SubscriptionSettings FAST = new SubscriptionSettings(
            3,
            Duration.ofMillis(1),
            Duration.ofMillis(4),
            Duration.ofMinutes(10),
            Duration.ofSeconds(2),
            Duration.ofMillis(10),
            Duration.ofMillis(40),
            4);

    private final List<SupervisedConsumer> started = new ArrayList<>();
    private final List<String> deadLetters = new CopyOnWriteArrayList<>();

    @AfterEach
    void closeAll() {
        started.forEach(SupervisedConsumer::close);
    }

    /** A clock the test moves. */
    private static final class MovableClock extends Clock {
        volatile Instant now = T0;

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    private static byte[] event(String job) {
        return EventCodec.encode(Event.of(job, T0, new JobFailed("vm", "capture", "x", false)));
    }

    /** A consumer that, at its first poll, is assigned partition 0 holding {@code jobs} (key = job's first char). */
    private static MockConsumer<String, byte[]> consumerWith(String... jobs) {
        MockConsumer<String, byte[]> c = new CommitRecordingConsumer();
        c.schedulePollTask(() -> {
            c.rebalance(List.of(TP));
            c.updateBeginningOffsets(Map.of(TP, 0L));
            for (int i = 0; i < jobs.length; i++) {
                c.addRecord(new ConsumerRecord<>(TOPIC, 0, i, jobs[i].substring(0, 1), event(jobs[i])));
            }
        });
        return c;
    }

    private SupervisedConsumer start(
            boolean byKey,
            int maxInFlight,
            EventHandler handler,
            Supplier<Consumer<String, byte[]>> consumers,
            SubscriptionSettings settings,
            Clock clock) {
        SupervisedConsumer s = new SupervisedConsumer(
                "g",
                List.of(TOPIC),
                byKey,
                maxInFlight,
                handler,
                consumers,
                (r, group, reason, attempts) -> deadLetters.add(r.offset() + " " + reason + " [" + attempts + "]"),
                settings,
                clock);
        started.add(s);
        return s.start();
    }

    /** A MockConsumer that remembers its commits after it is closed. */
    private static final class CommitRecordingConsumer extends MockConsumer<String, byte[]> {
        final Map<TopicPartition, Long> commits = new ConcurrentHashMap<>();

        CommitRecordingConsumer() {
            super("earliest");
        }

        @Override
        public synchronized void commitSync(Map<TopicPartition, OffsetAndMetadata> offsets) {
            super.commitSync(offsets);
            offsets.forEach((tp, o) -> commits.put(tp, o.offset()));
        }
    }

    private static long committed(MockConsumer<String, byte[]> c) {
        return ((CommitRecordingConsumer) c).commits.getOrDefault(TP, -1L);
    }

    @Test
    void aConsumerThatFailsIsRestartedAfterABackoffAndItsStateSaysSo() {
        MovableClock clock = new MovableClock();
        MockConsumer<String, byte[]> failing = consumerWith();
        failing.setPollException(new KafkaException("broker went away"));
        MockConsumer<String, byte[]> healthy = consumerWith("a1");
        CountDownLatch mayRestart = new CountDownLatch(1);
        AtomicInteger made = new AtomicInteger();
        List<String> handled = new CopyOnWriteArrayList<>();
        SupervisedConsumer s = start(
                false,
                1,
                (t, e) -> handled.add(e.jobId()),
                () -> {
                    if (made.getAndIncrement() == 0) {
                        return failing;
                    }
                    try {
                        mayRestart.await(30, TimeUnit.SECONDS); // hold the restart so "down" can be seen
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return healthy;
                },
                FAST,
                clock);

        await().atMost(Duration.ofSeconds(10)).until(() -> s.state().lastError().isPresent());
        SubscriptionState down = s.state();
        assertThat(down.running()).isFalse();
        assertThat(down.restarts()).isZero();
        assertThat(down.lastError()).hasValueSatisfying(m -> assertThat(m).contains("broker went away"));
        assertThat(down.lastErrorAt()).contains(T0);
        assertThat(failing.closed()).as("the failed consumer is closed").isTrue();

        mayRestart.countDown();
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("a1"));
        SubscriptionState up = s.state();
        assertThat(up.running()).isTrue();
        assertThat(up.restarts()).isEqualTo(1);
        assertThat(up.group()).isEqualTo("g");
        assertThat(up.topics()).containsExactly(TOPIC);
        await().atMost(Duration.ofSeconds(10)).until(() -> committed(healthy) == 1);
    }

    @Test
    void aConsumerThatKeepsFailingIsRestartedAgainAndAgain() {
        SupervisedConsumer s = start(
                false,
                1,
                (t, e) -> {},
                () -> {
                    MockConsumer<String, byte[]> c = consumerWith();
                    c.setPollException(new KafkaException("still down"));
                    return c;
                },
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(20)).until(() -> s.state().restarts() >= 5);
        assertThat(s.state().lastError()).hasValueSatisfying(m -> assertThat(m).contains("still down"));
    }

    @ParameterizedTest(name = "byKey={0}")
    @ValueSource(booleans = {false, true})
    void aRetriableFailureIsRetriedABoundedNumberOfTimesThenDeadLetteredAndTheNextEventFollows(boolean byKey) {
        MockConsumer<String, byte[]> c = consumerWith("a-bad", "a-good");
        AtomicInteger calls = new AtomicInteger();
        List<String> handled = new CopyOnWriteArrayList<>();
        start(
                byKey,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a-bad")) {
                        calls.incrementAndGet();
                        throw new RetriableException("target unreachable");
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("a-good") && committed(c) == 2);
        assertThat(calls.get()).isEqualTo(3);
        assertThat(deadLetters).containsExactly("0 retries exhausted after 3 attempts: target unreachable [3]");
    }

    @Test
    void noAttemptStartsAfterTheRetryDeadline() {
        MovableClock clock = new MovableClock();
        MockConsumer<String, byte[]> c = consumerWith("a-slow");
        AtomicInteger calls = new AtomicInteger();
        start(
                true,
                1,
                (t, e) -> {
                    calls.incrementAndGet();
                    clock.now = clock.now.plus(Duration.ofMinutes(11)); // the attempt took longer than giveUpAfter
                    throw new RetriableException("slow target");
                },
                () -> c,
                FAST,
                clock);
        await().atMost(Duration.ofSeconds(10)).until(() -> committed(c) == 1);
        assertThat(calls.get()).isEqualTo(1);
        assertThat(deadLetters).containsExactly("0 retries exhausted after 1 attempts: slow target [1]");
    }

    @Test
    void aPermanentFailureIsDeadLetteredAtOnce() {
        MockConsumer<String, byte[]> c = consumerWith("a-poison");
        start(
                true,
                1,
                (t, e) -> {
                    throw new PermanentException("bad policy");
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> committed(c) == 1);
        assertThat(deadLetters).containsExactly("0 failed permanently: bad policy [1]");
    }

    @Test
    void theStateCountsTheEventsNotHandledYetAsLag() {
        MockConsumer<String, byte[]> c = consumerWith("a0", "a1", "a2");
        c.schedulePollTask(() -> c.updateEndOffsets(Map.of(TP, 3L)));
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        SupervisedConsumer s = start(
                false,
                1,
                (t, e) -> {
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException ex) {
                        Thread.currentThread().interrupt();
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());

        await().atMost(Duration.ofSeconds(10)).until(() -> s.state().lag().orElse(-1) == 3); // one running, two queued
        release.countDown();
        await().atMost(Duration.ofSeconds(10))
                .until(() -> handled.size() == 3 && s.state().lag().orElse(-1) == 0);
    }

    @Test
    void aPartitionWithTooManyUnhandledEventsIsPausedAndResumedOnceTheyAreHandled() {
        // key a blocks; keys b.. flow; the partition holds 6 > 4 (FAST.maxBufferedPerPartition) unhandled events
        MockConsumer<String, byte[]> c = consumerWith("a0", "a1", "a2", "a3", "a4", "b0");
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        start(
                true,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a0")) {
                        try {
                            release.await(30, TimeUnit.SECONDS);
                        } catch (InterruptedException ex) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10))
                .until(() -> handled.contains("b0") && c.paused().contains(TP));
        assertThat(committed(c)).as("nothing beyond the blocked a0").isEqualTo(0);
        release.countDown();
        await().atMost(Duration.ofSeconds(10)).until(() -> c.paused().isEmpty() && committed(c) == 6);
        assertThat(handled).containsSubsequence("a0", "a1", "a2", "a3", "a4");
    }

    @Test
    void aRevokedPartitionWaitsForItsRunningHandlerCommitsWhatFinishedAndDropsItsQueuedEvents() {
        MockConsumer<String, byte[]> c = consumerWith("a0", "a1", "b0");
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        start(
                true,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a0")) {
                        awaitQuietly(release);
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("b0"));
        CountDownLatch revoking = new CountDownLatch(1);
        CountDownLatch revoked = new CountDownLatch(1);
        c.schedulePollTask(() -> {
            revoking.countDown();
            c.rebalance(List.of()); // the partition goes to another member
            revoked.countDown();
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> revoking.getCount() == 0);
        release.countDown(); // a0 ends while the revocation waits for it
        await().atMost(Duration.ofSeconds(10)).until(() -> revoked.getCount() == 0);
        // a1 was queued behind a0: the partition's next owner handles it, not this member
        assertThat(handled).containsExactlyInAnyOrder("a0", "b0");
        assertThat(committed(c)).as("a0 finished, a1 not").isEqualTo(1);
    }

    @Test
    void aRevokedPartitionWhoseHandlerOutlastsTheBoundCommitsNothingBeyondIt() {
        MockConsumer<String, byte[]> c = consumerWith("a0", "a1", "b0");
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        start(
                true,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a0")) {
                        awaitQuietly(release);
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("b0"));
        CountDownLatch revoked = new CountDownLatch(1);
        c.schedulePollTask(() -> {
            c.rebalance(List.of());
            revoked.countDown();
        });
        await().atMost(Duration.ofSeconds(10)).until(() -> revoked.getCount() == 0); // after FAST's 2 s
        release.countDown();
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("a0"));
        assertThat(handled).doesNotContain("a1");
        assertThat(committed(c)).isEqualTo(0);
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void closeWaitsForTheRunningHandlerAndCommitsWhatFinished() {
        MockConsumer<String, byte[]> c = consumerWith("a0", "b0");
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        SupervisedConsumer s = start(
                true,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a0")) {
                        inside.countDown();
                        try {
                            release.await(30, TimeUnit.SECONDS);
                        } catch (InterruptedException ex) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> inside.getCount() == 0 && handled.contains("b0"));
        s.beginClose();
        release.countDown(); // a0 ends within the drain timeout
        s.awaitClosed();
        assertThat(handled).contains("a0", "b0");
        assertThat(committed(c)).isEqualTo(2);
        assertThat(c.closed()).isTrue();
    }

    @Test
    void closeLeavesAHandlerThatOutlastsTheDrainTimeoutAndCommitsOnlyBeforeIt() {
        MockConsumer<String, byte[]> c = consumerWith("a0", "b0");
        CountDownLatch never = new CountDownLatch(1);
        List<String> handled = new CopyOnWriteArrayList<>();
        SupervisedConsumer s = start(
                true,
                2,
                (t, e) -> {
                    if (e.jobId().equals("a0")) {
                        try {
                            never.await(60, TimeUnit.SECONDS);
                        } catch (InterruptedException ex) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    handled.add(e.jobId());
                },
                () -> c,
                FAST,
                Clock.systemUTC());
        await().atMost(Duration.ofSeconds(10)).until(() -> handled.contains("b0"));
        long before = System.nanoTime();
        s.close();
        assertThat(Duration.ofNanos(System.nanoTime() - before)).isLessThan(Duration.ofSeconds(10));
        assertThat(committed(c)).isEqualTo(0);
        assertThat(c.closed()).isTrue();
        never.countDown();
    }
}
