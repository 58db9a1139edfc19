package io.tidemark.kafka;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.format.EventCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link EventBus} on Kafka. Publishing is idempotent with {@code acks=all}. Each subscription
 * runs one consumer thread that commits a record's offset only after its handler returned (or the
 * record went to the dead-letter topic), so delivery is at least once.
 */
public final class KafkaEventBus implements EventBus {

    private static final Logger log = LoggerFactory.getLogger(KafkaEventBus.class);
    private static final Duration PUBLISH_TIMEOUT = Duration.ofSeconds(30);

    private final String bootstrap;
    private final KafkaProducer<String, byte[]> producer;
    private final Admin admin;
    private final Set<String> knownTopics = ConcurrentHashMap.newKeySet();
    private final List<ConsumerLoop> loops = new CopyOnWriteArrayList<>();
    private final Duration retryBackoff;

    public KafkaEventBus(String bootstrapServers) {
        this(bootstrapServers, Duration.ofSeconds(2));
    }

    /** @param retryBackoff pause before a record whose handler failed retriably is delivered again */
    public KafkaEventBus(String bootstrapServers, Duration retryBackoff) {
        this.bootstrap = bootstrapServers;
        this.retryBackoff = retryBackoff;
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "tidemark-producer");
        this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        a.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        a.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        this.admin = Admin.create(a);
    }

    /**
     * Checks that the brokers answer within {@code timeout}.
     *
     * @throws RetriableException naming the bootstrap servers when they do not
     */
    public void checkReachable(Duration timeout) {
        try {
            admin.describeCluster().nodes().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while contacting Kafka at " + bootstrap, e);
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new RetriableException(
                    "Kafka at " + bootstrap + " did not answer within " + timeout.toSeconds()
                            + " s; check that the broker runs and the bootstrap address is right",
                    e);
        }
    }

    /** Creates the topics that do not exist yet (one partition; replication 1 on a single broker). */
    public void ensureTopics(List<String> topics) {
        List<NewTopic> missing = new ArrayList<>();
        for (String t : topics) {
            if (!knownTopics.contains(t)) {
                missing.add(new NewTopic(t, 1, (short) 1));
            }
        }
        if (missing.isEmpty()) {
            return;
        }
        for (Map.Entry<String, org.apache.kafka.common.KafkaFuture<Void>> e :
                admin.createTopics(missing).values().entrySet()) {
            try {
                e.getValue().get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException ex) {
                if (!(ex.getCause() instanceof TopicExistsException)) {
                    throw new RetriableException(
                            "cannot create topic " + e.getKey() + " on Kafka at " + bootstrap + ": "
                                    + ex.getCause().getMessage(),
                            ex);
                }
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while creating topics", ex);
            } catch (java.util.concurrent.TimeoutException ex) {
                throw new RetriableException(
                        "Kafka at " + bootstrap + " did not create topic " + e.getKey() + " within "
                                + PUBLISH_TIMEOUT.toSeconds() + " s; check that the broker runs",
                        ex);
            }
            knownTopics.add(e.getKey());
        }
    }

    /**
     * Makes {@code topic} have at least {@code partitions} partitions: creates it so, or adds
     * partitions to an existing one (never removes any). Records keep going to the partition of their
     * key, so the events of one key stay in order once the count no longer changes. Consumers see
     * partitions added to an existing topic only when they next refresh their metadata (within
     * {@code metadata.max.age.ms}, 5 minutes by default). Idempotent.
     *
     * @throws RetriableException if the broker does not answer or refuses
     */
    public void ensurePartitions(String topic, int partitions) {
        try {
            if (!knownTopics.contains(topic)) { // create it so at once rather than adding partitions later
                try {
                    admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
                            .all()
                            .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
                knownTopics.add(topic);
            }
            int now = admin.describeTopics(List.of(topic))
                    .allTopicNames()
                    .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .get(topic)
                    .partitions()
                    .size();
            if (now < partitions) {
                admin.createPartitions(
                                Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(partitions)))
                        .all()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                log.info("topic {}: {} partitions (was {})", topic, partitions, now);
            }
        } catch (ExecutionException e) {
            if (e.getCause() instanceof org.apache.kafka.common.errors.InvalidPartitionsException) {
                return; // it has that many already (the description read was older than the topic)
            }
            throw new RetriableException(
                    "cannot give topic " + topic + " " + partitions + " partitions on Kafka at " + bootstrap + ": "
                            + e.getCause().getMessage(),
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while adding partitions to " + topic, e);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new RetriableException(
                    "Kafka at " + bootstrap + " did not answer about topic " + topic + " within "
                            + PUBLISH_TIMEOUT.toSeconds() + " s; check that the broker runs",
                    e);
        }
    }

    /**
     * Creates {@code topic} compacted ({@code cleanup.policy=compact}: the log keeps at least the
     * latest record of each key), or makes an existing topic compacted. Idempotent.
     *
     * @throws RetriableException if the broker does not answer or refuses
     */
    public void ensureCompactedTopic(String topic) {
        Map<String, String> configs = Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT);
        try {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(configs)))
                        .all()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
                ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                AlterConfigOp compact = new AlterConfigOp(
                        new ConfigEntry(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT),
                        AlterConfigOp.OpType.SET);
                admin.incrementalAlterConfigs(Map.of(resource, List.of(compact)))
                        .all()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while creating topic " + topic, e);
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new RetriableException(
                    "cannot make topic " + topic + " compacted on Kafka at " + bootstrap + ": " + e.getMessage(), e);
        }
        knownTopics.add(topic);
    }

    /**
     * Takes the end offsets of {@code topic} now and returns a check that is true once consumer group
     * {@code group} has committed them (or beyond) on every partition: the group has handled every
     * record the topic held at this call. The check asks the broker each time it is evaluated.
     *
     * @throws RetriableException if the broker does not answer (now, or when the check runs)
     */
    public BooleanSupplier caughtUpCheck(String group, String topic) {
        ensureTopics(List.of(topic));
        Map<TopicPartition, Long> ends = new HashMap<>();
        try {
            var description = admin.describeTopics(List.of(topic))
                    .allTopicNames()
                    .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .get(topic);
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            description
                    .partitions()
                    .forEach(p -> latest.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
            admin.listOffsets(latest)
                    .all()
                    .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .forEach((tp, info) -> ends.put(tp, info.offset()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while reading the end offsets of " + topic, e);
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new RetriableException(
                    "cannot read the end offsets of " + topic + " on Kafka at " + bootstrap + ": " + e.getMessage(), e);
        }
        return () -> {
            Map<TopicPartition, OffsetAndMetadata> committed;
            try {
                committed = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while reading the offsets of group " + group, e);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof GroupIdNotFoundException)) {
                    throw new RetriableException(
                            "cannot read the offsets of group " + group + " on Kafka at " + bootstrap + ": "
                                    + e.getMessage(),
                            e);
                }
                committed = Map.of(); // the group has not committed anything yet
            } catch (java.util.concurrent.TimeoutException e) {
                throw new RetriableException(
                        "cannot read the offsets of group " + group + " on Kafka at " + bootstrap + ": "
                                + e.getMessage(),
                        e);
            }
            Map<TopicPartition, OffsetAndMetadata> done = committed;
            return ends.entrySet().stream().allMatch(e -> {
                OffsetAndMetadata c = done.get(e.getKey());
                return (c == null ? 0 : c.offset()) >= e.getValue();
            });
        };
    }

    @Override
    public void publish(String topic, String key, Event event) {
        ensureTopics(List.of(topic));
        try {
            producer.send(new ProducerRecord<>(topic, key, EventCodec.encode(event)))
                    .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while publishing to " + topic, e);
        } catch (ExecutionException | java.util.concurrent.TimeoutException | KafkaException e) {
            throw new RetriableException(
                    "Kafka at " + bootstrap + " did not acknowledge an event on " + topic + " within "
                            + PUBLISH_TIMEOUT.toSeconds() + " s; check that the broker runs",
                    e);
        }
    }

    @Override
    public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
        ensureTopics(topics);
        ensureTopics(List.of(Topics.DEAD_LETTER));
        ConsumerLoop loop = new ConsumerLoop(group, topics, handler);
        loops.add(loop);
        loop.thread.start();
        return () -> {
            loop.stop();
            loops.remove(loop);
        };
    }

    @Override
    public void close() {
        for (ConsumerLoop loop : loops) {
            loop.stop();
        }
        loops.clear();
        producer.close(Duration.ofSeconds(5));
        admin.close(Duration.ofSeconds(5));
    }

    private final class ConsumerLoop implements Runnable {
        private final String group;
        private final List<String> topics;
        private final EventHandler handler;
        private final KafkaConsumer<String, byte[]> consumer;
        private final Thread thread;
        private final CountDownLatch stopped = new CountDownLatch(1);
        private volatile boolean running = true;

        ConsumerLoop(String group, List<String> topics, EventHandler handler) {
            this.group = group;
            this.topics = List.copyOf(topics);
            this.handler = handler;
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10");
            // a backup may take long; the handler runs on the polling thread
            p.put(
                    ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG,
                    String.valueOf(Duration.ofHours(1).toMillis()));
            this.consumer = new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
            this.thread = new Thread(this, "bus-" + group);
            this.thread.setDaemon(true);
        }

        @Override
        public void run() {
            try {
                consumer.subscribe(topics);
                while (running) {
                    for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                        if (!running) {
                            break;
                        }
                        if (!deliver(r)) {
                            // redeliver this record (and what follows) after a pause
                            consumer.seek(new TopicPartition(r.topic(), r.partition()), r.offset());
                            pause();
                            break;
                        }
                        consumer.commitSync(Map.of(
                                new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1)));
                    }
                }
            } catch (WakeupException e) {
                if (running) {
                    log.error("consumer of group {} woken up unexpectedly", group, e);
                }
            } catch (KafkaException e) {
                log.error("consumer of group {} on {} stopped: {}", group, topics, e.getMessage(), e);
            } finally {
                consumer.close(Duration.ofSeconds(5));
                stopped.countDown();
            }
        }

        /** @return false when the record must be delivered again */
        private boolean deliver(ConsumerRecord<String, byte[]> r) {
            Event event;
            try {
                event = EventCodec.decode(r.value());
            } catch (PermanentException e) {
                deadLetter(r, e);
                return true;
            }
            try {
                handler.handle(r.topic(), event);
                return true;
            } catch (RetriableException e) {
                log.warn(
                        "group {}: event {} of job {} failed, will retry: {}",
                        group,
                        event.eventId(),
                        event.jobId(),
                        e.getMessage());
                return false;
            } catch (RuntimeException e) {
                log.error(
                        "group {}: event {} of job {} failed permanently, sent to {}: {}",
                        group,
                        event.eventId(),
                        event.jobId(),
                        Topics.DEAD_LETTER,
                        e.getMessage(),
                        e);
                deadLetter(r, e);
                return true;
            }
        }

        private void deadLetter(ConsumerRecord<String, byte[]> r, RuntimeException why) {
            ProducerRecord<String, byte[]> dl = new ProducerRecord<>(Topics.DEAD_LETTER, r.key(), r.value());
            dl.headers()
                    .add(
                            "tidemark.source",
                            (r.topic() + "/" + r.partition() + "/" + r.offset()).getBytes(StandardCharsets.UTF_8));
            dl.headers().add("tidemark.group", group.getBytes(StandardCharsets.UTF_8));
            dl.headers().add("tidemark.error", String.valueOf(why.getMessage()).getBytes(StandardCharsets.UTF_8));
            try {
                producer.send(dl).get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while dead-lettering", e);
            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                throw new RetriableException("cannot write to " + Topics.DEAD_LETTER, e);
            }
        }

        private void pause() {
            try {
                stopped.await(retryBackoff.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                running = false;
            }
        }

        void stop() {
            running = false;
            consumer.wakeup();
            try {
                if (Thread.currentThread() != thread) {
                    thread.join(Duration.ofSeconds(10).toMillis());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
