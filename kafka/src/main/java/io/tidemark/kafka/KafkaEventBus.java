package io.tidemark.kafka;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.format.EventCodec;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.Consumer;
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
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.LeaderNotAvailableException;
import org.apache.kafka.common.errors.SslAuthenticationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link EventBus} on Kafka. Publishing is idempotent with {@code acks=all}. Each subscription
 * is a {@link SupervisedConsumer}: one polling thread that owns the consumer and hands events to
 * per-key lanes ({@link KeyLanes}), committing a partition only up to its first event not yet
 * handled or dead-lettered, so delivery is at least once; a consumer that fails is restarted with
 * backoff. Topic creation waits until the topic can be used.
 */
public final class KafkaEventBus implements EventBus {

    private static final Logger log = LoggerFactory.getLogger(KafkaEventBus.class);
    private static final Duration PUBLISH_TIMEOUT = Duration.ofSeconds(30);
    /** How long topic creation and growth retry Kafka's retriable errors. */
    private static final Duration ADMIN_DEADLINE = Duration.ofSeconds(60);
    /** This process, as other processes see it in a consumer group's members: machine name and pid. */
    private static final String PROCESS =
            machineName() + "-pid" + ProcessHandle.current().pid();

    private final KafkaSettings kafka;
    private final String bootstrap;
    private final KafkaProducer<String, byte[]> producer;
    private final Admin admin;
    private final Set<String> knownTopics = ConcurrentHashMap.newKeySet();
    private final List<SupervisedConsumer> loops = new CopyOnWriteArrayList<>();
    private final SubscriptionSettings settings;
    private final Clock clock;

    public KafkaEventBus(String bootstrapServers) {
        this(bootstrapServers, SubscriptionSettings.DEFAULT, Clock.systemUTC());
    }

    /** @param retryBackoff pause before the first retry of an event whose handler failed retriably */
    public KafkaEventBus(String bootstrapServers, Duration retryBackoff) {
        this(bootstrapServers, SubscriptionSettings.DEFAULT.withInitialBackoff(retryBackoff), Clock.systemUTC());
    }

    /**
     * @param settings how subscriptions retry, drain, restart and bound their memory
     * @param clock the time of retry deadlines, faults and dead letters
     */
    public KafkaEventBus(String bootstrapServers, SubscriptionSettings settings, Clock clock) {
        this(KafkaSettings.plaintext(bootstrapServers), settings, clock);
    }

    /**
     * @param kafka the cluster: bootstrap servers, replication of the topics this bus creates, security
     * @param settings how subscriptions retry, drain, restart and bound their memory
     * @param clock the time of retry deadlines, faults and dead letters
     */
    public KafkaEventBus(KafkaSettings kafka, SubscriptionSettings settings, Clock clock) {
        this.kafka = kafka;
        this.bootstrap = kafka.bootstrapServers();
        this.settings = settings;
        this.clock = clock;
        Properties p = new Properties();
        p.putAll(kafka.clientProperties());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "tidemark-producer");
        this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
        Properties a = new Properties();
        a.putAll(kafka.clientProperties());
        a.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(PUBLISH_TIMEOUT.toMillis()));
        a.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        this.admin = Admin.create(a);
    }

    /**
     * Waits until {@link #checkReachable} passes, trying again with backoff (1 s doubling to 15 s)
     * while Kafka does not answer or answers with fewer brokers than the replication factor, until
     * {@code patience} has passed: an engine that starts beside a restarting cluster, or before it
     * after a host reboot, comes up and waits (DESIGN §8) instead of exiting. A refusal (TLS,
     * credentials) fails at once.
     *
     * @throws RetriableException or {@link PermanentException} from the last attempt when patience
     *     runs out
     */
    public void awaitReachable(Duration patience) {
        awaitReachable(patience, ATTEMPT_TIMEOUT, () -> {});
    }

    /** As {@link #awaitReachable(Duration)}, each attempt bounded by {@code attempt}; {@code beforeRetry} runs before each retry. */
    void awaitReachable(Duration patience, Duration attemptTimeout, Runnable beforeRetry) {
        long until = System.nanoTime() + patience.toNanos();
        Duration pause = Duration.ofSeconds(1);
        for (int attempt = 1; ; attempt++) {
            try {
                checkReachable(attemptTimeout);
                if (attempt > 1) {
                    log.info("Kafka at {} answers (attempt {})", bootstrap, attempt);
                }
                return;
            } catch (RetriableException | TooFewBrokersException e) {
                long left = until - System.nanoTime();
                if (left <= pause.toNanos()) {
                    throw e;
                }
                log.warn(
                        "{} (attempt {}); trying again in {} s, for up to {} s more",
                        e.getMessage(),
                        attempt,
                        pause.toSeconds(),
                        Duration.ofNanos(left).toSeconds());
                try {
                    Thread.sleep(pause.toMillis()); // a backoff between attempts, not synchronisation
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted while waiting for Kafka at " + bootstrap, ie);
                }
                pause = pause.multipliedBy(2).compareTo(MAX_PAUSE) > 0 ? MAX_PAUSE : pause.multipliedBy(2);
                beforeRetry.run();
            }
        }
    }

    private static final Duration ATTEMPT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration MAX_PAUSE = Duration.ofSeconds(15);

    /** Fewer brokers answer than the replication factor: wrong for good only if it lasts. */
    private static final class TooFewBrokersException extends PermanentException {
        TooFewBrokersException(String message) {
            super(message);
        }
    }

    /**
     * Checks that the brokers answer within {@code timeout}, accept this client's credentials, and are
     * enough for the replication factor the topics need.
     *
     * @throws RetriableException naming the bootstrap servers when they do not answer
     * @throws PermanentException when TLS or authentication fails, or the cluster has fewer brokers
     *     than the replication factor
     */
    public void checkReachable(Duration timeout) {
        int brokers;
        try {
            brokers = admin.describeCluster()
                    .nodes()
                    .get(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    .size();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while contacting Kafka at " + bootstrap, e);
        } catch (ExecutionException e) {
            Optional<PermanentException> refused = refusal(e.getCause());
            if (refused.isPresent()) {
                throw refused.get();
            }
            throw new RetriableException(
                    "Kafka at " + bootstrap + " did not answer: " + e.getCause().getMessage()
                            + "; check that the brokers run and the bootstrap address is right",
                    e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            throw new RetriableException(
                    "Kafka at " + bootstrap + " did not answer within " + timeout.toSeconds()
                            + " s; check that the broker runs and the bootstrap address is right",
                    e);
        }
        if (brokers < kafka.replicationFactor()) {
            throw new TooFewBrokersException("Kafka at " + bootstrap + " has " + brokers + " broker"
                    + (brokers == 1 ? "" : "s") + ", fewer than the replication factor " + kafka.replicationFactor()
                    + " the engine's topics need: lower kafka.replicationFactor or point kafka.bootstrap at a"
                    + " cluster with enough brokers");
        }
    }

    /**
     * The error to report when Kafka refused this client for good (TLS handshake, credentials, ACLs, a
     * replication factor it cannot give), if {@code failure} is one.
     */
    private Optional<PermanentException> refusal(Throwable failure) {
        String where = "Kafka at " + bootstrap + " (" + kafka.security().describe() + ")";
        if (failure instanceof SslAuthenticationException) {
            return Optional.of(new PermanentException(
                    "the TLS handshake with " + where + " failed: " + failure.getMessage()
                            + "; check kafka.tls.truststore holds the CA of the brokers' certificates",
                    failure));
        }
        if (failure instanceof AuthenticationException) {
            return Optional.of(new PermanentException(
                    where + " refused the credentials: " + failure.getMessage()
                            + "; check kafka.sasl.username and the password file or variable",
                    failure));
        }
        if (failure instanceof AuthorizationException) {
            return Optional.of(new PermanentException(
                    where + " does not allow this: " + failure.getMessage()
                            + "; grant the engine's user the ACLs listed in docs/deploy.md",
                    failure));
        }
        if (failure instanceof InvalidReplicationFactorException) {
            return Optional.of(new PermanentException(
                    where + " cannot give replication factor " + kafka.replicationFactor() + ": " + failure.getMessage()
                            + "; lower kafka.replicationFactor or add brokers",
                    failure));
        }
        return Optional.empty();
    }

    /** Creates the topics that do not exist yet (one partition, the settings' replication factor). */
    public void ensureTopics(List<String> topics) {
        for (String t : topics) {
            if (!knownTopics.contains(t)) {
                createUsable(t, 1, Map.of());
                knownTopics.add(t);
            }
        }
    }

    /**
     * Makes {@code topic} have at least {@code partitions} partitions: creates it so, or adds
     * partitions to an existing one (never removes any). Returns once every partition has a leader, so
     * the topic can be written at once. Records keep going to the partition of their key, so the
     * events of one key stay in order once the count no longer changes. Consumers see partitions
     * added to an existing topic only when they next refresh their metadata (within {@code
     * metadata.max.age.ms}, 5 minutes by default). Idempotent.
     *
     * @throws RetriableException if the broker does not answer or refuses within the admin deadline
     */
    public void ensurePartitions(String topic, int partitions) {
        String what = "give topic " + topic + " " + partitions + " partitions";
        if (!knownTopics.contains(topic)) { // create it so at once rather than adding partitions later
            createUsable(topic, partitions, Map.of());
            knownTopics.add(topic);
        }
        int now = withRetries(what, () -> describe(topic).partitions().size());
        if (now < partitions) {
            withRetries(what, () -> {
                try {
                    admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(partitions)))
                            .all()
                            .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof InvalidPartitionsException)) {
                        throw e;
                    } // it has that many already (the description read was older than the topic)
                }
                return null;
            });
            log.info("topic {}: {} partitions (was {})", topic, partitions, now);
        }
        awaitLeaders(topic, partitions, what);
    }

    /** How many partitions {@code topic} has now. */
    public int partitionsOf(String topic) {
        return withRetries(
                "describe topic " + topic, () -> describe(topic).partitions().size());
    }

    /**
     * Creates {@code topic} compacted ({@code cleanup.policy=compact}: the log keeps at least the
     * latest record of each key), or makes an existing topic compacted. Idempotent.
     *
     * @throws RetriableException if the broker does not answer or refuses within the admin deadline
     */
    public void ensureCompactedTopic(String topic) {
        Map<String, String> configs = Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT);
        if (!createUsable(topic, 1, configs)) {
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            AlterConfigOp compact = new AlterConfigOp(
                    new ConfigEntry(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT),
                    AlterConfigOp.OpType.SET);
            withRetries("make topic " + topic + " compacted", () -> admin.incrementalAlterConfigs(
                            Map.of(resource, List.of(compact)))
                    .all()
                    .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS));
        }
        knownTopics.add(topic);
    }

    /**
     * Creates {@code topic} unless it exists, and waits until at least {@code partitions} of its
     * partitions have a leader. Returns whether this call created it.
     */
    private boolean createUsable(String topic, int partitions, Map<String, String> configs) {
        String what = "create topic " + topic;
        boolean created = withRetries(what, () -> {
            try {
                Map<String, String> all = new HashMap<>(kafka.topicConfigs());
                all.putAll(configs);
                admin.createTopics(List.of(
                                new NewTopic(topic, partitions, (short) kafka.replicationFactor()).configs(all)))
                        .all()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                return true;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof TopicExistsException) {
                    return false;
                }
                throw e;
            }
        });
        awaitLeaders(topic, 1, what);
        return created;
    }

    /**
     * Waits until this broker's metadata shows {@code topic} with at least {@code partitions}
     * partitions, each with a leader: right after a creation the broker may not host it yet.
     */
    private void awaitLeaders(String topic, int partitions, String what) {
        withRetries(what, () -> {
            TopicDescription d = describe(topic);
            long led = d.partitions().stream()
                    .filter(p -> p.leader() != null && !p.leader().isEmpty())
                    .count();
            if (d.partitions().size() < partitions || led < d.partitions().size()) {
                throw new ExecutionException(new LeaderNotAvailableException(
                        led + " of " + d.partitions().size() + " partitions of " + topic + " have a leader"));
            }
            return null;
        });
    }

    private TopicDescription describe(String topic) throws Exception {
        return admin.describeTopics(List.of(topic))
                .allTopicNames()
                .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                .get(topic);
    }

    /** One admin call, {@code Future.get} inside. */
    @FunctionalInterface
    private interface AdminCall<T> {
        T call() throws Exception;
    }

    /**
     * Runs {@code call}, again after a growing pause while Kafka answers with a retriable error
     * (a topic not yet known to the broker, no leader yet, a timeout), up to {@link #ADMIN_DEADLINE}.
     *
     * @throws RetriableException saying what failed, where, once the deadline passed or the error
     *     is not retriable
     */
    private <T> T withRetries(String what, AdminCall<T> call) {
        long deadline = System.nanoTime() + ADMIN_DEADLINE.toNanos();
        long pause = Duration.ofMillis(50).toNanos();
        while (true) {
            Throwable failure;
            try {
                return call.call();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while trying to " + what + " on Kafka at " + bootstrap, e);
            } catch (ExecutionException e) {
                failure = e.getCause() == null ? e : e.getCause();
            } catch (java.util.concurrent.TimeoutException | KafkaException e) {
                failure = e;
            } catch (Exception e) {
                throw new RetriableException("cannot " + what + " on Kafka at " + bootstrap + ": " + e.getMessage(), e);
            }
            Optional<PermanentException> refused = refusal(failure);
            if (refused.isPresent()) {
                throw refused.get();
            }
            boolean retriable = failure instanceof org.apache.kafka.common.errors.RetriableException
                    || failure instanceof java.util.concurrent.TimeoutException;
            if (!retriable || System.nanoTime() + pause > deadline) {
                throw new RetriableException(
                        "cannot " + what + " on Kafka at " + bootstrap + ": " + failure.getMessage()
                                + (retriable
                                        ? " (still after " + ADMIN_DEADLINE.toSeconds()
                                                + " s; check that the broker runs)"
                                        : ""),
                        failure);
            }
            log.debug("Kafka at {}: cannot {} yet, retrying: {}", bootstrap, what, failure.getMessage());
            try {
                TimeUnit.NANOSECONDS.sleep(pause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while trying to " + what + " on Kafka at " + bootstrap, e);
            }
            pause = Math.min(pause * 2, Duration.ofSeconds(1).toNanos());
        }
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

    /**
     * The members of consumer group {@code group} now, as "client-id at /address": empty when no
     * process consumes with that group. Members of a process that was killed stay until their session
     * times out ({@code group.consumer.session.timeout.ms}, 45 s by default, 15 s on the embedded broker).
     *
     * @throws RetriableException if the brokers do not answer
     */
    public List<String> groupMembers(String group) {
        return withRetries("describe consumer group " + group, () -> {
            try {
                return admin
                        .describeConsumerGroups(List.of(group))
                        .all()
                        .get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                        .get(group)
                        .members()
                        .stream()
                        .map(m -> m.clientId() + " at " + m.host())
                        .sorted()
                        .toList();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof GroupIdNotFoundException) {
                    return List.<String>of(); // no process ever consumed as this group: nobody to wait for
                }
                throw e;
            }
        });
    }

    /**
     * Waits up to {@code patience} until consumer group {@code group} has no members: a process that
     * is about to consume as {@code group} calls this first, so two processes never share one role
     * (two workers claiming one host). A member left by a killed process ends with its session.
     *
     * @throws PermanentException naming the members when they are still there after {@code patience}
     * @throws RetriableException if the brokers do not answer
     */
    public void awaitGroupFree(String group, Duration patience, String whatToDo) {
        long deadline = System.nanoTime() + patience.toNanos();
        List<String> members = liveMembers(group);
        while (!members.isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new PermanentException("consumer group " + group + " on Kafka at " + bootstrap + " is in use by "
                        + String.join(", ", members) + ": " + whatToDo);
            }
            log.info("consumer group {} still has members {}; waiting for them to leave", group, members);
            try {
                TimeUnit.MILLISECONDS.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while waiting for consumer group " + group, e);
            }
            members = liveMembers(group);
        }
    }

    /**
     * The members of {@code group} but those of a process of this machine that is gone: a killed
     * predecessor's membership ends only with its session, and need not be waited for.
     */
    private List<String> liveMembers(String group) {
        return groupMembers(group).stream()
                .filter(m -> !deadProcessOfThisMachine(m))
                .toList();
    }

    /** True for a member "tidemark-MACHINE-pidN at /ADDRESS" of this machine whose process N has ended. */
    static boolean deadProcessOfThisMachine(String member) {
        String prefix = "tidemark-" + machineName() + "-pid";
        if (!member.startsWith(prefix)) {
            return false;
        }
        String rest = member.substring(prefix.length());
        int end = rest.indexOf(' ');
        try {
            long pid = Long.parseLong(end < 0 ? rest : rest.substring(0, end));
            return ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true);
        } catch (NumberFormatException e) {
            return false;
        }
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
    public java.util.concurrent.CompletableFuture<Void> publishAsync(String topic, String key, Event event) {
        java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        try {
            ensureTopics(List.of(topic));
            producer.send(new ProducerRecord<>(topic, key, EventCodec.encode(event)), (metadata, e) -> {
                if (e == null) {
                    done.complete(null);
                } else {
                    done.completeExceptionally(new RetriableException(
                            "Kafka at " + bootstrap + " did not acknowledge an event on " + topic
                                    + "; check that the broker runs",
                            e));
                }
            });
        } catch (KafkaException e) {
            done.completeExceptionally(new RetriableException(
                    "Kafka at " + bootstrap + " refused an event on " + topic + "; check that the broker runs", e));
        } catch (RuntimeException e) {
            done.completeExceptionally(e);
        }
        return done.orTimeout(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                .exceptionallyCompose(e -> java.util.concurrent.CompletableFuture.failedFuture(
                        e instanceof java.util.concurrent.TimeoutException
                                ? new RetriableException(
                                        "Kafka at " + bootstrap + " did not acknowledge an event on " + topic
                                                + " within " + PUBLISH_TIMEOUT.toSeconds()
                                                + " s; check that the broker runs",
                                        e)
                                : e));
    }

    @Override
    public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
        return start(group, topics, false, 1, handler);
    }

    @Override
    public Subscription subscribeByKey(String group, List<String> topics, int maxInFlight, EventHandler handler) {
        if (maxInFlight < 1) {
            throw new IllegalArgumentException("maxInFlight must be at least 1, not " + maxInFlight);
        }
        return start(group, topics, true, maxInFlight, handler);
    }

    private Subscription start(
            String group, List<String> topics, boolean byKey, int maxInFlight, EventHandler handler) {
        ensureTopics(topics);
        ensureTopics(List.of(Topics.DEAD_LETTER));
        SupervisedConsumer loop = new SupervisedConsumer(
                group,
                topics,
                byKey,
                maxInFlight,
                handler,
                () -> newConsumer(group),
                this::deadLetter,
                settings,
                clock);
        loops.add(loop);
        loop.start();
        return () -> {
            loop.close();
            loops.remove(loop);
        };
    }

    @Override
    public List<SubscriptionState> subscriptions() {
        return loops.stream().map(SupervisedConsumer::state).toList();
    }

    /**
     * Stops every subscription at once (no more polling), waits up to the drain timeout for their
     * running handlers, commits what finished, then closes the producer.
     */
    @Override
    public void close() {
        List<SupervisedConsumer> all = List.copyOf(loops);
        all.forEach(SupervisedConsumer::beginClose);
        all.forEach(SupervisedConsumer::awaitClosed);
        loops.clear();
        producer.close(Duration.ofSeconds(5));
        admin.close(Duration.ofSeconds(5));
    }

    private static String machineName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "unknown-machine";
        }
    }

    private Consumer<String, byte[]> newConsumer(String group) {
        Properties p = new Properties();
        p.putAll(kafka.clientProperties());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "tidemark-" + PROCESS); // names this process in group listings
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        return new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
    }

    private void deadLetter(ConsumerRecord<String, byte[]> r, String group, String reason, int attempts) {
        ProducerRecord<String, byte[]> dl = new ProducerRecord<>(Topics.DEAD_LETTER, r.key(), r.value());
        dl.headers()
                .add(
                        "tidemark.source",
                        (r.topic() + "/" + r.partition() + "/" + r.offset()).getBytes(StandardCharsets.UTF_8));
        dl.headers().add("tidemark.group", group.getBytes(StandardCharsets.UTF_8));
        dl.headers().add("tidemark.error", reason.getBytes(StandardCharsets.UTF_8));
        dl.headers().add("tidemark.attempts", String.valueOf(attempts).getBytes(StandardCharsets.UTF_8));
        dl.headers().add("tidemark.dead-lettered-at", clock.instant().toString().getBytes(StandardCharsets.UTF_8));
        try {
            producer.send(dl).get(PUBLISH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while dead-lettering", e);
        } catch (ExecutionException | java.util.concurrent.TimeoutException | KafkaException e) {
            throw new RetriableException(
                    "cannot write to " + Topics.DEAD_LETTER + " on Kafka at " + bootstrap + ": " + e.getMessage(), e);
        }
    }
}
