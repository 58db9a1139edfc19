package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.VmPlaced;
import io.tidemark.format.EventCodec;
import io.tidemark.format.Json;
import io.tidemark.testkit.kafka.LocalKafkaCluster;
import io.tidemark.testkit.postgres.PostgresCluster;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Scheduler→job-topic lag of a large fleet, and the failover of the firing scheduler, on the
 * topology's parts: 3 KRaft nodes, PostgreSQL, 2 scheduler processes ({@code tidemark run --roles
 * scheduler}, Quartz JDBC cluster). The VMs are inventory entries ({@link VmPlaced} on the
 * inventory topic, spread over the worker hosts) without QEMU: no worker runs, so what is measured
 * is the time from a firing's fire time to each job's publish on {@code tidemark.jobs.<host>}.
 *
 * <p>Phases, one run: {@code firings} firings of {@code baselineVms} VMs (the baseline); with those,
 * the scheduler that fired last killed with SIGKILL halfway to the next firing and started again,
 * {@code failovers} times, measuring the firing after each kill; then the first firing of {@code
 * vms} VMs.
 */
public final class FiringLag {

    private static final String POLICY = "fleet";
    private static final Pattern FIRED = Pattern.compile("policy " + POLICY + " fired for (\\S+): (\\d+) jobs");

    /**
     * @param dir work directory
     * @param baselineVms VMs of the baseline phase
     * @param vms VMs of the large phase
     * @param hosts hosts the VMs are spread over
     * @param interval the policy's schedule
     * @param firings firings measured per phase
     * @param failovers kills of the firing scheduler
     */
    public record Options(
            Path dir, int baselineVms, int vms, int hosts, Duration interval, int firings, int failovers) {}

    private final Options o;
    private final Consumer<String> progress;
    private final ObjectNode figures = Json.mapper().createObjectNode();
    private final String classpath = System.getProperty("java.class.path");
    private final Map<Instant, List<Double>> lagsByFiring = new TreeMap<>();
    private final Process[] schedulers = new Process[2];
    private final Path[] logs = new Path[2];
    private final int[] lives = new int[2];

    public FiringLag(Options options, Consumer<String> progress) {
        this.o = options;
        this.progress = progress;
    }

    public ObjectNode run() throws IOException {
        Files.createDirectories(o.dir());
        Path policies = Files.createDirectories(o.dir().resolve("policies"));
        Files.writeString(
                policies.resolve(POLICY + ".yaml"),
                "name: " + POLICY + "\nvms:\n  globs: [\"vm*\"]\nschedule:\n  interval: "
                        + o.interval().toSeconds() + "s\nrpo: 1h\ntargets: []\n");
        figures.put("loadAverageAtStart", Topology.loadAverage());
        try (LocalKafkaCluster kafka = LocalKafkaCluster.start(o.dir().resolve("kafka"), 3);
                PostgresCluster postgres = PostgresCluster.start("postgres_firing")) {
            postgres.createDatabase("quartz");
            Path pgPass = o.dir().resolve("pg.pass");
            Files.writeString(pgPass, PostgresCluster.PASSWORD);
            Files.setPosixFilePermissions(pgPass, PosixFilePermissions.fromString("rw-------"));
            for (int i = 0; i < 2; i++) {
                String name = "sched" + (i + 1);
                Path config = o.dir().resolve(name + ".yaml");
                Files.writeString(
                        config,
                        """
                        host: %s
                        roles: [scheduler]
                        data: %s
                        policies: %s
                        metrics: "127.0.0.1:0"
                        kafka:
                          bootstrap: %s
                          replicationFactor: 3
                          minInsyncReplicas: 2
                        scheduler:
                          jdbc:
                            url: %s
                            user: %s
                            passwordFile: %s
                            checkinInterval: 2s
                        """
                                .formatted(
                                        name,
                                        Files.createDirectories(o.dir().resolve(name)),
                                        policies,
                                        kafka.bootstrapServers(),
                                        postgres.jdbcUrl("quartz"),
                                        PostgresCluster.PASSWORD_USER,
                                        pgPass));
                start(i);
            }
            for (int i = 0; i < 2; i++) {
                awaitReady(i);
            }
            progress.accept("2 schedulers up");
            try (KafkaProducer<String, byte[]> producer = producer(kafka.bootstrapServers());
                    KafkaConsumer<byte[], byte[]> consumer = consumer(kafka.bootstrapServers())) {
                consumer.subscribe(Pattern.compile(Pattern.quote(Topics.JOBS_PREFIX) + ".*"));
                Instant placed = place(producer, 0, o.baselineVms());
                figures.set("baseline", phase(consumer, o.baselineVms(), o.firings(), placed, "baseline"));
                figures.set("failover", failovers(consumer, o.baselineVms()));
                placed = place(producer, o.baselineVms(), o.vms());
                figures.set("large", phase(consumer, o.vms(), 1, placed, "large"));
            } finally {
                for (Process p : schedulers) {
                    if (p != null) {
                        p.destroyForcibly();
                    }
                }
            }
        }
        figures.put("loadAverageAtEnd", Topology.loadAverage());
        return figures;
    }

    /** Places VMs {@code from} until {@code to}; returns when the schedulers may know them all. */
    private Instant place(KafkaProducer<String, byte[]> producer, int from, int to) {
        Instant now = Instant.now();
        for (int i = from; i < to; i++) {
            String vm = String.format(Locale.ROOT, "vm%05d", i);
            String host = "hw" + (1 + i % o.hosts());
            VmPlaced placed = new VmPlaced(vm, host, Map.of(), List.of(new VmPlaced.Disk("sd0", 1L << 30)), now);
            producer.send(new ProducerRecord<>(
                    Topics.INVENTORY, vm, EventCodec.encode(Event.of("inventory/" + host + "/" + vm, now, placed))));
        }
        producer.flush();
        progress.accept("inventory holds " + to + " VMs over " + o.hosts() + " hosts");
        return Instant.now().plusSeconds(5); // the schedulers follow the inventory topic within ms
    }

    /** Waits for {@code n} firings due after {@code placed} with a job for each of {@code vms} VMs. */
    private ObjectNode phase(KafkaConsumer<byte[], byte[]> consumer, int vms, int n, Instant placed, String name) {
        List<Instant> complete = new ArrayList<>();
        long deadline = System.nanoTime()
                + o.interval().multipliedBy(n + 2).plusMinutes(10).toNanos();
        while (complete.size() < n && System.nanoTime() < deadline) {
            poll(consumer);
            complete.clear();
            for (Map.Entry<Instant, List<Double>> f : lagsByFiring.entrySet()) {
                if (f.getKey().isAfter(placed) && f.getValue().size() >= vms) {
                    complete.add(f.getKey());
                }
            }
        }
        if (complete.isEmpty()) {
            throw new IllegalStateException("no firing reached all " + vms + " VMs; scheduler logs " + logs[0]);
        }
        ObjectNode out = summarise(complete, vms);
        progress.accept(name + ": " + out);
        return out;
    }

    private ObjectNode failovers(KafkaConsumer<byte[], byte[]> consumer, int vms) {
        List<Instant> after = new ArrayList<>();
        List<String> victims = new ArrayList<>();
        for (int k = 0; k < o.failovers(); k++) {
            // the newest firing, complete
            Instant last = awaitCompleteAfter(consumer, Instant.now().minus(o.interval()), vms);
            int victim = firedBy(last);
            Instant killAt = last.plus(o.interval().dividedBy(2));
            while (Instant.now().isBefore(killAt)) {
                poll(consumer);
            }
            schedulers[victim].destroyForcibly();
            victims.add("sched" + (victim + 1));
            Instant killed = Instant.now();
            LockSupport.parkNanos(TimeUnit.SECONDS.toNanos(2));
            start(victim);
            Instant next = awaitCompleteAfter(consumer, killed, vms);
            after.add(next);
            progress.accept(
                    "failover " + (k + 1) + ": killed sched" + (victim + 1) + "; next firing " + next + " complete");
            awaitReady(victim);
        }
        ObjectNode out = summarise(after, vms);
        out.put("killed", String.join(",", victims));
        return out;
    }

    private Instant awaitCompleteAfter(KafkaConsumer<byte[], byte[]> consumer, Instant after, int vms) {
        long deadline =
                System.nanoTime() + o.interval().multipliedBy(4).plusMinutes(3).toNanos();
        while (System.nanoTime() < deadline) {
            poll(consumer);
            for (Map.Entry<Instant, List<Double>> f : lagsByFiring.entrySet()) {
                if (f.getKey().isAfter(after) && f.getValue().size() >= vms) {
                    return f.getKey();
                }
            }
        }
        throw new IllegalStateException("no complete firing after " + after + "; scheduler logs " + logs[0]);
    }

    private int firedBy(Instant fireTime) {
        for (int i = 0; i < 2; i++) {
            Matcher m = FIRED.matcher(text(i));
            while (m.find()) {
                if (Instant.parse(m.group(1)).equals(fireTime)) {
                    return i;
                }
            }
        }
        return 0; // logged after the last job only: not yet, take the first
    }

    private ObjectNode summarise(List<Instant> firings, int vms) {
        List<Double> all = new ArrayList<>();
        List<Double> lastJob = new ArrayList<>();
        for (Instant f : firings) {
            List<Double> l = lagsByFiring.get(f);
            all.addAll(l);
            lastJob.add(l.stream().mapToDouble(d -> d).max().orElse(0));
        }
        ObjectNode out = Json.mapper().createObjectNode();
        out.put("vms", vms);
        out.put("firings", firings.size());
        out.put("jobs", all.size());
        out.put("lagP50Seconds", Topology.percentile(all, 50));
        out.put("lagP99Seconds", Topology.percentile(all, 99));
        out.put("lagMaxSeconds", all.stream().mapToDouble(d -> d).max().orElse(0));
        out.put(
                "lastJobOfFiringMaxSeconds",
                lastJob.stream().mapToDouble(d -> d).max().orElse(0));
        out.put(
                "jobsPerSecondInAFiring",
                all.size()
                        / Math.max(0.001, lastJob.stream().mapToDouble(d -> d).sum()));
        return out;
    }

    private void poll(KafkaConsumer<byte[], byte[]> consumer) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
            Event e = EventCodec.decode(r.value());
            if (e.payload() instanceof SnapshotJob j) {
                lagsByFiring
                        .computeIfAbsent(j.scheduledFor(), t -> new ArrayList<>())
                        .add(Duration.between(j.scheduledFor(), e.time()).toMillis() / 1000.0);
            }
        }
    }

    private void start(int i) {
        lives[i]++;
        logs[i] = o.dir().resolve("sched" + (i + 1) + "-" + lives[i] + ".log");
        try {
            schedulers[i] = new ProcessBuilder(
                            Path.of(System.getProperty("java.home"), "bin", "java")
                                    .toString(),
                            "-Xmx256m",
                            "-XX:+UseSerialGC",
                            "-XX:TieredStopAtLevel=1",
                            "-cp",
                            classpath,
                            "io.tidemark.cli.Main",
                            "run",
                            "--config",
                            o.dir().resolve("sched" + (i + 1) + ".yaml").toString())
                    .redirectErrorStream(true)
                    .redirectOutput(logs[i].toFile())
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void awaitReady(int i) {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(4);
        while (System.nanoTime() < deadline) {
            if (text(i).contains("engine up on host")) {
                return;
            }
            if (!schedulers[i].isAlive()) {
                throw new IllegalStateException("scheduler " + (i + 1) + " exited; log " + logs[i]);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
        throw new IllegalStateException("scheduler " + (i + 1) + " not up within 4 min; log " + logs[i]);
    }

    private String text(int i) {
        try {
            return Files.exists(logs[i]) ? Files.readString(logs[i], StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static KafkaProducer<String, byte[]> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        return new KafkaProducer<>(p);
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "firing-lag-" + System.nanoTime());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "1000");
        p.put(
                ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        p.put(
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
                org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }
}
