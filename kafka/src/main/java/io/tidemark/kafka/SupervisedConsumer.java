package io.tidemark.kafka;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.EventBus.EventHandler;
import io.tidemark.core.bus.EventBus.SubscriptionState;
import io.tidemark.core.event.Event;
import io.tidemark.format.EventCodec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subscription: a polling thread that owns the Kafka consumer, and {@link KeyLanes} that run the
 * handler. The polling thread fetches, hands each event to its key's lane, commits per partition
 * what {@link PartitionProgress} says is finished, and pauses a partition with too many events
 * unhandled. A consumer that fails is closed and replaced after a growing pause (supervision); its
 * unhandled events are fetched again by the next one from the committed offsets.
 */
final class SupervisedConsumer implements EventBus.Subscription {

    private static final Logger log = LoggerFactory.getLogger(SupervisedConsumer.class);
    private static final Duration POLL = Duration.ofMillis(200);

    /** Where events that cannot be handled go. */
    interface DeadLetters {
        /**
         * Writes {@code record} with {@code reason} to the dead-letter topic durably.
         *
         * @throws RetriableException if it could not
         */
        void send(ConsumerRecord<String, byte[]> record, String group, String reason, int attempts);
    }

    private final String group;
    private final List<String> topics;
    private final boolean byKey;
    private final EventHandler handler;
    private final Supplier<Consumer<String, byte[]>> consumers;
    private final DeadLetters deadLetters;
    private final SubscriptionSettings settings;
    private final Clock clock;
    private final KeyLanes lanes;
    private final Thread thread;
    private final CountDownLatch stopping = new CountDownLatch(1);
    /** The assigned partitions' progress: the polling thread's alone. */
    private final Map<TopicPartition, PartitionProgress> progress = new HashMap<>();

    private volatile Consumer<String, byte[]> current;
    private volatile boolean running;
    private final AtomicInteger restarts = new AtomicInteger();
    private volatile String lastError;
    private volatile Instant lastErrorAt;
    /** Events not handled yet as of the last poll; negative while unknown. */
    private volatile long lag = -1;

    /**
     * @param byKey whether events of different keys are handled at once (else all in one lane)
     * @param maxInFlight handlers running at once at most
     * @param consumers makes a new consumer, subscribed by this class; called again after a failure
     */
    SupervisedConsumer(
            String group,
            List<String> topics,
            boolean byKey,
            int maxInFlight,
            EventHandler handler,
            Supplier<Consumer<String, byte[]>> consumers,
            DeadLetters deadLetters,
            SubscriptionSettings settings,
            Clock clock) {
        this.group = group;
        this.topics = List.copyOf(topics);
        this.byKey = byKey;
        this.handler = handler;
        this.consumers = consumers;
        this.deadLetters = deadLetters;
        this.settings = settings;
        this.clock = clock;
        this.lanes = new KeyLanes("bus-" + group, maxInFlight);
        this.thread = new Thread(this::supervise, "bus-" + group);
        this.thread.setDaemon(true);
    }

    SupervisedConsumer start() {
        thread.start();
        return this;
    }

    SubscriptionState state() {
        return new SubscriptionState(
                group,
                topics,
                running,
                restarts.get(),
                Optional.ofNullable(lastError),
                Optional.ofNullable(lastErrorAt),
                lag < 0 ? java.util.OptionalLong.empty() : java.util.OptionalLong.of(lag));
    }

    /** Stops polling; the polling thread then drains the lanes, commits and leaves the group. */
    void beginClose() {
        stopping.countDown();
        Consumer<String, byte[]> c = current;
        if (c != null) {
            c.wakeup();
        }
    }

    /** Waits for {@link #beginClose} to finish: at most the drain timeout and a little more. */
    void awaitClosed() {
        try {
            thread.join(settings.drainTimeout().plusSeconds(15).toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            log.warn("group {}: the consumer did not stop in time; leaving it", group);
        }
    }

    @Override
    public void close() {
        beginClose();
        if (Thread.currentThread() != thread) {
            awaitClosed();
        }
    }

    private boolean stopped() {
        return stopping.getCount() == 0;
    }

    private void supervise() {
        int failures = 0;
        boolean restarting = false;
        while (!stopped()) {
            long startedAt = clock.millis();
            Consumer<String, byte[]> consumer = null;
            RuntimeException fault = null;
            try {
                consumer = consumers.get();
                current = consumer;
                if (stopped()) {
                    break;
                }
                consumer.subscribe(topics, new Rebalance(consumer));
                running = true;
                if (restarting) {
                    restarts.incrementAndGet();
                    restarting = false;
                }
                poll(consumer);
            } catch (WakeupException e) {
                if (!stopped()) {
                    fault = e;
                }
            } catch (RuntimeException e) {
                if (!stopped()) {
                    fault = e;
                } else {
                    log.debug("group {}: consumer failed while stopping: {}", group, e.getMessage());
                }
            } finally {
                running = false;
                if (consumer != null) {
                    release(consumer, fault == null);
                }
                current = null;
            }
            if (fault == null) {
                break;
            }
            // a consumer that ran a good while before failing starts the backoff again
            failures = clock.millis() - startedAt > settings.maxRestartBackoff().toMillis() ? 1 : failures + 1;
            Duration pause = settings.restartBackoffAfter(failures);
            lastError = fault.getClass().getSimpleName() + ": " + fault.getMessage();
            lastErrorAt = clock.instant();
            log.error(
                    "group {}: the consumer of {} failed, restarting it in {} ms: {}",
                    group,
                    topics,
                    pause.toMillis(),
                    lastError,
                    fault);
            try {
                if (stopping.await(pause.toMillis(), TimeUnit.MILLISECONDS)) {
                    break;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            restarting = true;
        }
        if (!stopped()) {
            return; // interrupted: nothing more to release
        }
        // closed while no consumer ran (between restarts): still let running handlers end in time
        lanes.stop(settings.drainTimeout());
    }

    private void poll(Consumer<String, byte[]> consumer) {
        while (!stopped()) {
            for (ConsumerRecord<String, byte[]> r : consumer.poll(POLL)) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                PartitionProgress p = progress.computeIfAbsent(tp, PartitionProgress::new);
                p.fetched(r.offset());
                lanes.submit(laneOf(r), new Delivery(r, p));
            }
            commitFinished(consumer, progress.values());
            bound(consumer);
            measureLag(consumer);
        }
    }

    /**
     * Events of the assigned partitions not handled yet: behind the log's end (the consumer's own
     * fetch state, no call to the broker) plus fetched and not finished.
     */
    private void measureLag(Consumer<String, byte[]> consumer) {
        long total = 0;
        boolean known = false;
        for (TopicPartition tp : consumer.assignment()) {
            java.util.OptionalLong behind = consumer.currentLag(tp);
            if (behind.isPresent()) {
                total += behind.getAsLong();
                known = true;
            }
            PartitionProgress p = progress.get(tp);
            if (p != null) {
                total += p.unfinished();
            }
        }
        lag = known ? total : -1;
    }

    private String laneOf(ConsumerRecord<String, byte[]> r) {
        if (!byKey) {
            return "";
        }
        // events without a key keep their partition's order
        return r.key() != null ? "k:" + r.key() : "p:" + r.topic() + "/" + r.partition();
    }

    /** Pauses a partition with too many unfinished events; resumes it at half. */
    private void bound(Consumer<String, byte[]> consumer) {
        int max = settings.maxBufferedPerPartition();
        for (PartitionProgress p : progress.values()) {
            int unfinished = p.unfinished();
            if (!p.paused && unfinished >= max) {
                consumer.pause(List.of(p.partition));
                p.paused = true;
                log.info("group {}: {} paused, {} events not handled yet", group, p.partition, unfinished);
            } else if (p.paused && unfinished <= max / 2) {
                consumer.resume(List.of(p.partition));
                p.paused = false;
            }
        }
    }

    private void commitFinished(Consumer<String, byte[]> consumer, Collection<PartitionProgress> partitions) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        Map<TopicPartition, PartitionProgress> of = new HashMap<>();
        for (PartitionProgress p : partitions) {
            p.committable().ifPresent(o -> {
                offsets.put(p.partition, new OffsetAndMetadata(o));
                of.put(p.partition, p);
            });
        }
        if (offsets.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(offsets);
            offsets.forEach((tp, o) -> of.get(tp).committed(o.offset()));
        } catch (CommitFailedException
                | RebalanceInProgressException
                | org.apache.kafka.common.errors.RetriableException e) {
            // not committed now: committed at the next poll, or fetched again by the partition's next owner
            log.debug("group {}: commit of {} postponed: {}", group, offsets, e.getMessage());
        }
    }

    /**
     * After the polling loop: when stopping, drains the lanes for the drain timeout and commits what
     * finished; after a failure, commits what finished if it still can. Then closes the consumer.
     */
    private void release(Consumer<String, byte[]> consumer, boolean drain) {
        if (drain) {
            lanes.stop(settings.drainTimeout());
        }
        try {
            commitFinished(consumer, progress.values());
        } catch (RuntimeException e) { // a failed consumer may refuse anything: it is replaced anyway
            log.warn("group {}: cannot commit what finished: {}", group, e.getMessage());
        }
        // what was fetched and not handled is fetched again by the next consumer
        progress.values().forEach(PartitionProgress::revoke);
        progress.clear();
        try {
            consumer.close(Duration.ofSeconds(5));
        } catch (RuntimeException e) {
            log.warn("group {}: closing the consumer failed: {}", group, e.getMessage());
        }
    }

    private final class Rebalance implements ConsumerRebalanceListener {
        private final Consumer<String, byte[]> consumer;

        Rebalance(Consumer<String, byte[]> consumer) {
            this.consumer = consumer;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            List<PartitionProgress> gone = partitions.stream()
                    .map(progress::remove)
                    .filter(p -> p != null)
                    .toList();
            gone.forEach(PartitionProgress::revoke);
            // let the handlers running on them end (bounded), so the next owner rarely repeats them
            long deadline = System.nanoTime() + settings.drainTimeout().toNanos();
            for (PartitionProgress p : gone) {
                if (!p.awaitIdle(deadline)) {
                    log.warn(
                            "group {}: a handler on revoked {} still runs after {} s; its event goes to the next owner",
                            group,
                            p.partition,
                            settings.drainTimeout().toSeconds());
                }
            }
            // commit what finished; what runs on is fetched again by the next owner
            try {
                commitFinished(consumer, gone);
            } catch (KafkaException e) {
                log.warn("group {}: cannot commit revoked {}: {}", group, partitions, e.getMessage());
            }
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            partitions.stream().map(progress::remove).filter(p -> p != null).forEach(PartitionProgress::revoke);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            partitions.forEach(tp -> progress.computeIfAbsent(tp, PartitionProgress::new));
        }
    }

    /** One fetched event on its lane: handled, retried with backoff, or dead-lettered. */
    private final class Delivery implements KeyLanes.Job {
        private final ConsumerRecord<String, byte[]> record;
        private final PartitionProgress partition;
        private Instant first;
        private int failures;
        private String deadLetterReason;

        Delivery(ConsumerRecord<String, byte[]> record, PartitionProgress partition) {
            this.record = record;
            this.partition = partition;
        }

        @Override
        public boolean cancelled() {
            return partition.revoked();
        }

        @Override
        public Optional<Duration> attempt() {
            if (!partition.begin()) {
                return Optional.empty(); // revoked meanwhile: its next owner handles it
            }
            try {
                return attemptOnce();
            } finally {
                partition.end();
            }
        }

        private Optional<Duration> attemptOnce() {
            if (deadLetterReason == null) {
                handleOnce();
            }
            if (deadLetterReason == null) {
                if (failures == 0) {
                    partition.finished(record.offset());
                    return Optional.empty();
                }
                return Optional.of(settings.backoffAfter(failures));
            }
            try {
                deadLetters.send(record, group, deadLetterReason, Math.max(1, failures));
            } catch (RuntimeException e) {
                log.warn(
                        "group {}: cannot dead-letter {}/{}/{} yet, will try again: {}",
                        group,
                        record.topic(),
                        record.partition(),
                        record.offset(),
                        e.getMessage());
                return Optional.of(settings.maxBackoff());
            }
            partition.finished(record.offset());
            return Optional.empty();
        }

        /** One call of the handler; sets {@code failures} and {@code deadLetterReason}. */
        private void handleOnce() {
            Event event;
            try {
                event = EventCodec.decode(record.value());
            } catch (PermanentException e) {
                deadLetterReason = "cannot decode: " + e.getMessage();
                log.error("group {}: an event on {} cannot be decoded, dead-lettered: {}", group, record.topic(), e);
                return;
            }
            Instant now = clock.instant();
            if (first == null) {
                first = now;
            }
            try {
                handler.handle(record.topic(), event);
                failures = 0;
            } catch (RetriableException e) {
                failures++;
                if (settings.allowsAnother(failures, first, clock.instant())) {
                    log.warn(
                            "group {}: event {} of job {} failed (attempt {} of {}), retrying in {} ms: {}",
                            group,
                            event.eventId(),
                            event.jobId(),
                            failures,
                            settings.maxAttempts(),
                            settings.backoffAfter(failures).toMillis(),
                            e.getMessage());
                } else {
                    deadLetterReason = "retries exhausted after " + failures + " attempts: " + e.getMessage();
                    log.error(
                            "group {}: event {} of job {} dead-lettered: {}",
                            group,
                            event.eventId(),
                            event.jobId(),
                            deadLetterReason);
                }
            } catch (RuntimeException e) {
                failures++;
                deadLetterReason = "failed permanently: " + e.getMessage();
                log.error(
                        "group {}: event {} of job {} failed permanently, dead-lettered: {}",
                        group,
                        event.eventId(),
                        event.jobId(),
                        e.getMessage(),
                        e);
            }
        }
    }
}
