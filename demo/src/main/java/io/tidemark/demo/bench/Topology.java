package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.EventCodec;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.kafka.LocalKafkaCluster;
import io.tidemark.testkit.postgres.PostgresCluster;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A fleet on one machine, every part a process of its own, under SIGKILL (issue 12, item 3).
 *
 * <p>Parts, all real: a Kafka cluster of three KRaft nodes ({@link LocalKafkaCluster}; topics with
 * three replicas and {@code min.insync.replicas} 2), PostgreSQL ({@link PostgresCluster}) holding
 * the Quartz store of two scheduler processes, N worker hosts ({@code tidemark run --roles worker},
 * each with its own QMP directory and its own QEMU VMs under TCG), two replicator processes, and an
 * S3 target (S3Proxy, or Ceph RGW with {@link Options#rgw}). The worker hosts and replicators share
 * one primary repository directory, named by {@code repository:} in each process's config (as an
 * NFS mount would be in a fleet).
 *
 * <p>While the VMs' disks are written with known patterns (the harness keeps its own model of
 * them, {@link SoakModel}), it kills a process with SIGKILL again and again, round-robin over the
 * kinds in {@link Options#kinds} in a seeded order: the scheduler that fired last, a worker host, a
 * replicator, a Kafka node; PostgreSQL is restarted (immediate stop: clients cut off). Each killed
 * process is started again on its data. Once, a VM migrates: its QMP socket moves from one worker
 * host's directory to another's, as a live migration moves it.
 *
 * <p>At the end the policy is quiesced, every topic is read from the beginning and the harness
 * checks: no firing doubled (two jobs of one VM for one firing) or lost (a gap of more than two
 * intervals plus the failover allowance between firings of a VM), no job lost (each has a restore
 * point or a JobFailed with a reason), no half-visible point (announced ⇔ present), every point on
 * the target and its restore from the target bit-identical (SHA-256 computed here) to a state the
 * model says the disks held at its snapshot moment. It prints each VM's firing lag after each kill
 * and whether the migrated VM kept its chain or why it took a full.
 */
public final class Topology {

    private static final String POLICY = "topo";
    private static final String TARGET = "offsite";
    private static final String BUCKET = "tidemark-topology";
    private static final String READY = "engine up on host";
    private static final Duration CAPTURE_SLACK = Duration.ofSeconds(1);
    private static final Pattern FIRED = Pattern.compile("policy " + POLICY + " fired for (\\S+): (\\d+) jobs");

    /**
     * @param dir work directory (short: Unix sockets)
     * @param hosts worker hosts
     * @param vmsPerHost QEMU VMs on each worker host
     * @param diskSize each VM's disk
     * @param interval the policy's schedule
     * @param kills kills to do
     * @param kinds the kinds of kill, in turn: scheduler, worker, replicator, broker, postgres
     * @param downFor how long a killed process stays down at most (a random part of it)
     * @param settle pause between kills
     * @param migrate whether one VM migrates between worker hosts (needs two hosts)
     * @param rgw Ceph RGW as target (else S3Proxy)
     * @param replicationBench measure replication with one and two replicators after the run
     * @param seed the random seed
     */
    public record Options(
            Path dir,
            int hosts,
            int vmsPerHost,
            long diskSize,
            Duration interval,
            int kills,
            List<String> kinds,
            Duration downFor,
            Duration settle,
            boolean migrate,
            boolean rgw,
            boolean replicationBench,
            long seed) {

        public Options {
            kinds = List.copyOf(kinds);
            for (String k : kinds) {
                if (!KINDS.contains(k)) {
                    throw new IllegalArgumentException("unknown kind of kill '" + k + "'; one of " + KINDS);
                }
            }
        }
    }

    /** The kinds of kill. */
    public static final List<String> KINDS = List.of("scheduler", "worker", "replicator", "broker", "postgres");

    /** The figures (JSON) and one line per failed check; the run passed iff there are none. */
    public record Result(ObjectNode figures, List<String> failures) {}

    private final Options o;
    private final Consumer<String> progress;
    private final Random random;
    private final String classpath = System.getProperty("java.class.path");
    private final List<String> failures = new ArrayList<>();
    private final ObjectNode figures = Json.mapper().createObjectNode();
    private final List<PatternedVm> vms = new ArrayList<>();
    private final List<Proc> schedulers = new ArrayList<>();
    private final List<Proc> workers = new ArrayList<>();
    private final List<Proc> replicators = new ArrayList<>();
    private final List<Kill> kills = new ArrayList<>();
    private final Map<String, String> vmHost = new HashMap<>();
    private Migration migration;
    private Instant quiesceWritten = Instant.MAX;

    private Path logs;
    private Path primary;
    private Path policies;
    private LocalKafkaCluster kafka;
    private java.util.concurrent.CompletableFuture<LocalKafkaCluster> kafkaStart;
    private PostgresCluster postgres;
    private S3Endpoint s3;

    /** Where the target is and how to sign. */
    private record S3Endpoint(URI endpoint, String region, String accessKey, String secretKey) {}

    /** One kill: what, when the process was killed, restarted and ready again. */
    private record Kill(int n, String kind, String victim, Instant at, Instant restarted, Instant ready) {}

    /** The VM that moved between worker hosts. */
    private record Migration(String vm, String from, String to, Instant at) {}

    /** A role process: {@code Main run --config ...}, started again after each kill. */
    private final class Proc {
        final String name;
        final String kind;
        final Path config;
        Process process;
        Path log;
        int life;
        int selfExits;

        Proc(String name, String kind, Path config) {
            this.name = name;
            this.kind = kind;
            this.config = config;
        }

        void start() {
            life++;
            log = logs.resolve(name + "-" + life + ".log");
            try {
                process = new ProcessBuilder(
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
                                config.toString())
                        .redirectErrorStream(true)
                        .redirectOutput(log.toFile())
                        .start();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot start " + name, e);
            }
        }

        String text() {
            try {
                return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        boolean ready() {
            return text().contains(READY);
        }

        /** Waits until the process says it is up; a process that exited is started again (counted). */
        Instant awaitReady(Duration max) {
            long deadline = System.nanoTime() + max.toNanos();
            while (System.nanoTime() < deadline) {
                if (ready()) {
                    return Instant.now();
                }
                if (!process.isAlive()) {
                    failures.add(name + " exited by itself with " + process.exitValue() + " before it was up: "
                            + lastLines(log, 3));
                    if (++selfExits > 3) {
                        throw new IllegalStateException(name + " exited by itself " + selfExits
                                + " times before it was up; the run gives up. Last log " + log);
                    }
                    start();
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
            }
            failures.add(name + " was not up within " + max.toSeconds() + " s; log " + log);
            return Instant.now();
        }

        void kill() {
            process.destroyForcibly();
            try {
                process.waitFor(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        /** SIGTERM, then SIGKILL if it does not end within a minute. */
        void stop() {
            if (process == null || !process.isAlive()) {
                return;
            }
            process.destroy();
            try {
                if (!process.waitFor(60, TimeUnit.SECONDS)) {
                    failures.add(name + " did not stop within 60 s of SIGTERM; log " + log);
                    kill();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        /** The fire times this life's log says this scheduler fired. */
        List<Instant> fired() {
            List<Instant> out = new ArrayList<>();
            Matcher m = FIRED.matcher(text());
            while (m.find()) {
                out.add(Instant.parse(m.group(1)));
            }
            return out;
        }
    }

    public Topology(Options options, Consumer<String> progress) {
        this.o = options;
        this.progress = progress;
        this.random = new Random(options.seed());
    }

    public Result run() throws IOException {
        Instant began = Instant.now();
        Files.createDirectories(o.dir());
        logs = Files.createDirectories(o.dir().resolve("logs"));
        primary = Files.createDirectories(o.dir().resolve("primary"));
        policies = Files.createDirectories(o.dir().resolve("policies"));
        figures.put("startedAt", began.toString());
        figures.put("loadAverageAtStart", loadAverage());
        EmbeddedS3 s3Proxy = null;
        CephCluster ceph = null;
        List<Proc> all = new ArrayList<>();
        try {
            Instant t0 = Instant.now();
            kafkaStart = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return LocalKafkaCluster.start(o.dir().resolve("kafka"), 3);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            Instant t = Instant.now();
            postgres = PostgresCluster.start("postgres_topology");
            postgres.createDatabase("quartz");
            progress.accept("PostgreSQL on port " + postgres.port());
            t = Instant.now();
            if (o.rgw()) {
                ceph = CephCluster.start(o.dir().resolve("ceph"));
                ceph.createBucket(BUCKET, false);
                s3 = new S3Endpoint(ceph.rgwEndpoint(), CephCluster.REGION, ceph.s3AccessKey(), ceph.s3SecretKey());
                figures.put("target", "Ceph RGW " + ceph.rgwEndpoint());
            } else {
                s3Proxy = EmbeddedS3.builder()
                        .filesystem(Files.createDirectories(o.dir().resolve("s3")))
                        .build()
                        .start();
                s3Proxy.createBucket(BUCKET);
                s3 = new S3Endpoint(s3Proxy.endpoint(), s3Proxy.region(), s3Proxy.accessKey(), s3Proxy.secretKey());
                figures.put("target", "S3Proxy " + s3Proxy.endpoint());
            }
            figures.put("targetStartSeconds", secondsSince(t));
            startVms();
            writePolicy(o.interval());
            kafka = kafkaStart.join();
            figures.put("kafkaStartSeconds", secondsSince(t0));
            progress.accept("Kafka: 3 KRaft nodes on " + kafka.bootstrapServers());
            for (int i = 1; i <= 2; i++) {
                schedulers.add(new Proc("sched" + i, "scheduler", config("sched" + i, "scheduler", BUCKET)));
            }
            for (int h = 1; h <= o.hosts(); h++) {
                workers.add(new Proc("hw" + h, "worker", config("hw" + h, "worker", BUCKET)));
            }
            for (int i = 1; i <= 2; i++) {
                replicators.add(new Proc("rep" + i, "replicator", config("rep" + i, "replicator", BUCKET)));
            }
            all.addAll(workers);
            all.addAll(replicators);
            all.addAll(schedulers);
            t = Instant.now();
            // workers first: they publish the inventory the schedulers route by
            for (Proc p : all) {
                p.start();
            }
            for (Proc p : all) {
                p.awaitReady(Duration.ofMinutes(4));
            }
            figures.put("rolesStartSeconds", secondsSince(t));
            progress.accept(
                    "fleet up: " + all.size() + " role processes, " + vms.size() + " VMs; load " + loadAverage());
            for (PatternedVm vm : vms) {
                vm.startWriting("topology-writer");
            }
            Instant baselineFrom = Instant.now();
            sleep(o.settle().plus(o.interval()));
            figures.put("baselineFrom", baselineFrom.toString());
            figures.put("baselineTo", Instant.now().toString());
            killLoop();
            Instant quiesced = quiesce();
            vms.forEach(PatternedVm::stopWriting);
            vms.forEach(vm -> vm.awaitStopped(Duration.ofSeconds(60)));
            Events events = drain(quiesced);
            check(events);
            if (o.replicationBench()) {
                replicationBench();
            }
            figures.put(
                    "writes", vms.stream().mapToLong(PatternedVm::writesDone).sum());
            figures.put("loadAverageAtEnd", loadAverage());
            figures.put("seconds", secondsSince(began));
        } finally {
            vms.forEach(PatternedVm::stopWriting);
            for (Proc p : all) {
                if (p.process != null) {
                    p.process.destroyForcibly();
                }
            }
            for (PatternedVm vm : vms) {
                try {
                    vm.qemu.close();
                } catch (RuntimeException e) {
                    failures.add("QEMU of " + vm.name() + " did not stop cleanly: " + e.getMessage());
                }
            }
            if (kafka != null) {
                kafka.close();
            } else if (kafkaStart != null) {
                kafkaStart
                        .thenAccept(LocalKafkaCluster::close)
                        .exceptionally(e -> null)
                        .join();
            }
            if (postgres != null) {
                postgres.close();
            }
            if (s3Proxy != null) {
                s3Proxy.close();
            }
            if (ceph != null) {
                ceph.close();
            }
        }
        ArrayNode f = figures.putArray("failures");
        failures.forEach(f::add);
        return new Result(figures, List.copyOf(failures));
    }

    // ---------------------------------------------------------------------------------------- setup

    private void startVms() throws IOException {
        for (int h = 1; h <= o.hosts(); h++) {
            Path qmp = Files.createDirectories(o.dir().resolve("q").resolve("hw" + h));
            for (int i = 0; i < o.vmsPerHost(); i++) {
                String name = "vm" + h + "" + (char) ('a' + i);
                vms.add(new PatternedVm(
                        QemuVm.start(qmp, name, o.diskSize()), o.seed() * 31 + vms.size(), this::writerFailed));
                vmHost.put(name, "hw" + h);
            }
        }
    }

    private void writePolicy(Duration interval) throws IOException {
        Path file = policies.resolve(POLICY + ".yaml");
        Path tmp = policies.resolve("." + POLICY + ".tmp");
        Files.writeString(
                tmp,
                """
                name: %s
                vms:
                  globs: ["vm*"]
                schedule:
                  interval: %ds
                rpo: %ds
                targets: [%s]
                """
                        .formatted(POLICY, interval.toSeconds(), interval.toSeconds() * 6, TARGET));
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** A role process's config; {@code repository:} names the shared primary. */
    private Path config(String name, String role, String bucket) throws IOException {
        Path data = Files.createDirectories(o.dir().resolve("data").resolve(name));
        Path qmp = Files.createDirectories(o.dir().resolve("q").resolve(name));
        Path secrets = Files.createDirectories(o.dir().resolve("secrets"));
        Path access = secret(secrets.resolve("s3.access"), s3.accessKey());
        Path secretKey = secret(secrets.resolve("s3.secret"), s3.secretKey());
        Path pgPass = secret(secrets.resolve("pg.pass"), PostgresCluster.PASSWORD);
        String yaml =
                """
                host: %s
                roles: [%s]
                data: %s
                repository: %s
                qmpDir: %s
                policies: %s
                metrics: "127.0.0.1:0"
                maxConcurrentJobs: 2
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
                targets:
                  %s:
                    type: s3
                    endpoint: %s
                    region: %s
                    bucket: %s
                    prefix: topo
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 30s
                """
                        .formatted(
                                name,
                                role,
                                data,
                                primary,
                                qmp,
                                policies,
                                kafka.bootstrapServers(),
                                postgres.jdbcUrl("quartz"),
                                PostgresCluster.PASSWORD_USER,
                                pgPass,
                                TARGET,
                                s3.endpoint(),
                                s3.region(),
                                bucket,
                                access,
                                secretKey);
        return Files.writeString(o.dir().resolve(name + ".yaml"), yaml);
    }

    private static Path secret(Path file, String value) throws IOException {
        Files.writeString(file, value);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        return file;
    }

    // ----------------------------------------------------------------------------------- the kills

    private void killLoop() {
        List<String> order = new ArrayList<>(o.kinds());
        Collections.shuffle(order, random);
        int migrateAt = o.migrate() && o.hosts() >= 2 ? o.kills() / 2 : -1;
        for (int n = 0; n < o.kills(); n++) {
            if (n == migrateAt) {
                migrate();
                sleep(o.settle());
            }
            String kind = order.get(n % order.size());
            Kill k = killOnce(n + 1, kind);
            kills.add(k);
            progress.accept(String.format(
                    Locale.ROOT,
                    "kill %d/%d: %s %s; restarted after %.1f s, up after %.1f s; load %s",
                    n + 1,
                    o.kills(),
                    kind,
                    k.victim(),
                    seconds(k.at(), k.restarted()),
                    seconds(k.at(), k.ready()),
                    loadAverage()));
            sleep(o.settle());
        }
        if (migrateAt >= o.kills() || (o.migrate() && o.kills() == 0 && o.hosts() >= 2)) {
            migrate();
            sleep(o.settle());
        }
    }

    private Kill killOnce(int n, String kind) {
        long down =
                o.downFor().toMillis() <= 0 ? 0 : random.nextLong(o.downFor().toMillis() + 1);
        switch (kind) {
            case "broker" -> {
                int node = random.nextInt(kafka.size());
                Instant at = Instant.now();
                try {
                    kafka.kill(node);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
                sleep(Duration.ofMillis(down));
                Instant restarted = Instant.now();
                try {
                    kafka.restart(node);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return new Kill(n, kind, "kafka-" + (node + 1), at, restarted, Instant.now());
            }
            case "postgres" -> {
                Instant at = Instant.now();
                postgres.restart();
                Instant up = Instant.now();
                return new Kill(n, kind, "postgresql", at, at, up);
            }
            default -> {
                Proc victim = victim(kind);
                Instant at = Instant.now();
                victim.kill();
                sleep(Duration.ofMillis(down));
                Instant restarted = Instant.now();
                victim.start();
                Instant ready = victim.awaitReady(Duration.ofMinutes(4));
                return new Kill(n, kind, victim.name, at, restarted, ready);
            }
        }
    }

    /** The scheduler that fired last (the one to kill for failover), else a random process of the kind. */
    private Proc victim(String kind) {
        return switch (kind) {
            case "scheduler" -> {
                Proc last = null;
                Instant newest = Instant.MIN;
                for (Proc s : schedulers) {
                    List<Instant> fired = s.fired();
                    if (!fired.isEmpty() && fired.get(fired.size() - 1).isAfter(newest)) {
                        newest = fired.get(fired.size() - 1);
                        last = s;
                    }
                }
                yield last != null ? last : schedulers.get(random.nextInt(schedulers.size()));
            }
            case "worker" -> workers.get(random.nextInt(workers.size()));
            case "replicator" -> replicators.get(random.nextInt(replicators.size()));
            default -> throw new IllegalArgumentException(kind);
        };
    }

    /** Moves the first VM of host 1 to host 2: its QMP socket changes directory, as after a live migration. */
    private void migrate() {
        PatternedVm vm = vms.get(0);
        String from = vmHost.get(vm.name());
        String to = "hw2";
        Path target = o.dir().resolve("q").resolve(to).resolve(vm.name() + ".qmp");
        try {
            Files.move(vm.qemu.qmpSocket(), target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the QMP socket of " + vm.name(), e);
        }
        migration = new Migration(vm.name(), from, to, Instant.now());
        vmHost.put(vm.name(), to);
        progress.accept("migrated " + vm.name() + " from " + from + " to " + to + " (QMP socket moved)");
    }

    // ------------------------------------------------------------------------------ the final phase

    /** Makes the policy fire once a day, waits until every scheduler reloaded it; returns when. */
    private Instant quiesce() throws IOException {
        List<Integer> before = new ArrayList<>();
        for (Proc s : schedulers) {
            before.add(count(s.text(), "policies reloaded"));
        }
        quiesceWritten = Instant.now();
        writePolicy(Duration.ofHours(24));
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (System.nanoTime() < deadline) {
            boolean all = true;
            for (int i = 0; i < schedulers.size(); i++) {
                all &= count(schedulers.get(i).text(), "policies reloaded") > before.get(i);
            }
            if (all) {
                break;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
        Instant quiesced = Instant.now();
        progress.accept("policy quiesced (a firing a day); draining");
        return quiesced;
    }

    /** Every event of the topics the checks read. */
    private record Events(
            Map<String, SnapshotJob> jobs,
            Map<String, Instant> published,
            Map<String, Integer> publishCount,
            Map<String, List<JobFailed>> failed,
            Map<String, Instant> captured,
            Map<String, Event> created,
            Map<String, Event> replicated) {}

    private Events drain(Instant quiesced) {
        Map<String, SnapshotJob> jobs = new LinkedHashMap<>();
        Map<String, Instant> published = new HashMap<>();
        Map<String, Integer> publishCount = new HashMap<>();
        Map<String, List<JobFailed>> failed = new HashMap<>();
        Map<String, Instant> captured = new HashMap<>();
        Map<String, Event> created = new LinkedHashMap<>();
        Map<String, Event> replicated = new LinkedHashMap<>();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(6);
        boolean settled = false;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            List<String> topics =
                    new ArrayList<>(List.of(Topics.JOB_STATUS, Topics.RESTORE_POINTS, Topics.REPLICATION));
            workers.forEach(w -> topics.add(Topics.jobs(w.name)));
            for (String topic : topics) {
                List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(30));
                if (infos != null) {
                    infos.forEach(i -> parts.add(new TopicPartition(i.topic(), i.partition())));
                }
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Set<String> pending = Set.of();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    Event e;
                    try {
                        e = EventCodec.decode(r.value());
                    } catch (RuntimeException ex) {
                        failures.add("a record on " + r.topic() + " cannot be decoded: " + ex.getMessage());
                        continue;
                    }
                    Object payload = e.payload();
                    if (payload instanceof SnapshotJob j) {
                        jobs.putIfAbsent(e.jobId(), j);
                        published.putIfAbsent(e.jobId(), e.time());
                        publishCount.merge(e.jobId(), 1, Integer::sum);
                    } else if (payload instanceof JobFailed f) {
                        failed.computeIfAbsent(e.jobId(), x -> new ArrayList<>())
                                .add(f);
                    } else if (payload instanceof SnapshotCaptured c) {
                        captured.putIfAbsent(e.jobId(), e.time());
                    } else if (payload instanceof RestorePointCreated c) {
                        created.putIfAbsent(c.vm() + "/" + c.restorePointId(), e);
                    } else if (payload instanceof ReplicaCommitted c) {
                        replicated.putIfAbsent(c.vm() + "/" + c.restorePointId() + "@" + c.target(), e);
                    }
                }
                Set<String> done = new HashSet<>(failed.keySet());
                created.values().forEach(e -> done.add(e.jobId()));
                pending = new HashSet<>(jobs.keySet());
                pending.removeAll(done);
                boolean allReplicated =
                        created.keySet().stream().allMatch(k -> replicated.containsKey(k + "@" + TARGET));
                Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
                boolean readAll = parts.stream().allMatch(tp -> consumer.position(tp) >= ends.get(tp));
                if (readAll
                        && pending.isEmpty()
                        && allReplicated
                        && Instant.now().isAfter(quiesced.plus(o.interval()))) {
                    settled = true;
                    break;
                }
            }
            if (!settled) {
                failures.add("the fleet did not settle within 6 min of the quiesce: " + pending.size()
                        + " jobs without an outcome (e.g. "
                        + pending.stream().sorted().limit(3).toList() + "), "
                        + created.keySet().stream()
                                .filter(k -> !replicated.containsKey(k + "@" + TARGET))
                                .count()
                        + " points not replicated");
            }
        }
        progress.accept("drained: " + jobs.size() + " jobs, " + created.size() + " points announced");
        return new Events(jobs, published, publishCount, failed, captured, created, replicated);
    }

    // ------------------------------------------------------------------------------------ the checks

    private void check(Events ev) throws IOException {
        Repository repo = Repository.open(new FileObjectTarget(primary));
        Map<String, String> unreadable = new TreeMap<>();
        Map<String, Manifest> points = Soak.readableManifests(repo, unreadable);
        unreadable.forEach(
                (point, why) -> failures.add("manifest " + point + " in the primary cannot be read: " + why));
        checkFirings(ev);
        checkJobs(ev, points);
        checkHalfVisible(ev, points);
        checkTarget(points);
        lagAfterKills(ev);
        checkMigration(points);
        ObjectNode procs = figures.putObject("processStarts");
        for (Proc p : allProcs()) {
            procs.put(p.name, p.life);
        }
    }

    private List<Proc> allProcs() {
        List<Proc> all = new ArrayList<>(schedulers);
        all.addAll(workers);
        all.addAll(replicators);
        return all;
    }

    /** Doubled: two jobs of one VM less than half an interval apart. Lost: a gap longer than allowed. */
    private void checkFirings(Events ev) {
        Map<String, List<SnapshotJob>> byVm = new TreeMap<>();
        ev.jobs().values().forEach(j -> byVm.computeIfAbsent(j.vm(), v -> new ArrayList<>())
                .add(j));
        long intervalMs = o.interval().toMillis();
        // a kill of the firing scheduler delays the next firing by the Quartz cluster's failover
        long allowedGapMs = 2 * intervalMs + 30_000;
        int doubled = 0;
        int lost = 0;
        long maxGapMs = 0;
        int quiesceFirings = 0;
        for (Map.Entry<String, List<SnapshotJob>> e : byVm.entrySet()) {
            // the quiesce replaces the schedule, and a new interval trigger fires once at its start:
            // one firing per VM off the old grid is expected, a second one is doubled (a firing of
            // the old grid due just as the policy changed is an ordinary one)
            List<SnapshotJob> before = e.getValue().stream()
                    .filter(j -> j.scheduledFor().isBefore(quiesceWritten))
                    .sorted(Comparator.comparing(SnapshotJob::scheduledFor))
                    .toList();
            Instant anchor =
                    before.isEmpty() ? null : before.get(before.size() - 1).scheduledFor();
            List<SnapshotJob> after = e.getValue().stream()
                    .filter(j -> !j.scheduledFor().isBefore(quiesceWritten))
                    .filter(j -> anchor == null || !onGrid(anchor, j.scheduledFor()))
                    .toList();
            quiesceFirings += after.size();
            if (after.size() > 1) {
                doubled += after.size() - 1;
                failures.add("firing doubled: " + e.getKey() + " got " + after.size() + " jobs after the quiesce: "
                        + after.stream().map(SnapshotJob::scheduledFor).toList());
            }
            List<SnapshotJob> js = new ArrayList<>(e.getValue().stream()
                    .filter(j -> j.scheduledFor().isBefore(quiesceWritten)
                            || (anchor != null && onGrid(anchor, j.scheduledFor())))
                    .toList());
            js.sort(Comparator.comparing(SnapshotJob::scheduledFor));
            for (int i = 1; i < js.size(); i++) {
                long gap = Duration.between(
                                js.get(i - 1).scheduledFor(), js.get(i).scheduledFor())
                        .toMillis();
                maxGapMs = Math.max(maxGapMs, gap);
                if (gap < intervalMs / 2) {
                    doubled++;
                    failures.add("firing doubled: " + e.getKey() + " got jobs for "
                            + js.get(i - 1).scheduledFor() + " and " + js.get(i).scheduledFor());
                } else if (gap > allowedGapMs) {
                    lost++;
                    failures.add("firing lost: " + e.getKey() + " got no job between "
                            + js.get(i - 1).scheduledFor()
                            + " and " + js.get(i).scheduledFor() + " (" + gap / 1000 + " s, interval "
                            + o.interval().toSeconds() + " s)");
                }
            }
        }
        long republished =
                ev.publishCount().values().stream().filter(c -> c > 1).count();
        ObjectNode f = figures.putObject("firings");
        f.put("jobs", ev.jobs().size());
        f.put("vms", byVm.size());
        f.put("doubled", doubled);
        f.put("lost", lost);
        f.put("maxGapSeconds", maxGapMs / 1000.0);
        f.put("sameJobIdPublishedAgain", republished);
        f.put("firingsAtTheQuiesce", quiesceFirings);
        Set<String> expected = new HashSet<>();
        vms.forEach(v -> expected.add(v.name()));
        expected.removeAll(byVm.keySet());
        if (!expected.isEmpty()) {
            failures.add("VMs that never got a job: " + expected);
        }
    }

    /** Whether {@code t} is a whole number of intervals after {@code anchor} (within 50 ms). */
    private boolean onGrid(Instant anchor, Instant t) {
        long ms = Duration.between(anchor, t).toMillis();
        long rest = Math.floorMod(ms, o.interval().toMillis());
        return ms > 0 && (rest < 50 || o.interval().toMillis() - rest < 50);
    }

    /** Every job has one restore point or a JobFailed with a reason. */
    private void checkJobs(Events ev, Map<String, Manifest> points) {
        Map<String, List<Manifest>> byJob = new HashMap<>();
        points.values().forEach(m -> byJob.computeIfAbsent(m.jobId(), j -> new ArrayList<>())
                .add(m));
        int withPoint = 0;
        int withFailure = 0;
        int lost = 0;
        Map<String, Integer> reasons = new TreeMap<>();
        for (String job : ev.jobs().keySet()) {
            List<Manifest> ms = byJob.getOrDefault(job, List.of());
            List<JobFailed> fs = ev.failed().getOrDefault(job, List.of());
            if (ms.size() > 1) {
                failures.add("job " + job + " produced " + ms.size() + " restore points");
            }
            if (!ms.isEmpty()) {
                withPoint++;
            } else if (!fs.isEmpty()
                    && fs.stream().allMatch(f -> f.error() != null && !f.error().isBlank())) {
                withFailure++;
                fs.forEach(f -> reasons.merge(f.stage() + ": " + Soak.normalise(f.error()), 1, Integer::sum));
            } else {
                lost++;
                if (lost <= 5) {
                    failures.add("job lost: " + job + " has neither a restore point nor a JobFailed with a reason");
                }
            }
        }
        if (lost > 5) {
            failures.add((lost - 5) + " more jobs lost");
        }
        long unknown = points.values().stream()
                .filter(m -> !ev.jobs().containsKey(m.jobId()))
                .count();
        if (unknown > 0) {
            failures.add(unknown + " restore points belong to jobs absent from the jobs topics");
        }
        ObjectNode j = figures.putObject("jobs");
        j.put("restorePoint", withPoint);
        j.put("jobFailed", withFailure);
        j.put("lost", lost);
        ObjectNode r = j.putObject("jobFailedByReason");
        reasons.forEach(r::put);
    }

    private void checkHalfVisible(Events ev, Map<String, Manifest> points) {
        int half = 0;
        for (String key : ev.created().keySet()) {
            if (!points.containsKey(key)) {
                half++;
                failures.add("half-visible: RestorePointCreated for " + key + " but no manifest in the primary");
            }
        }
        for (String key : points.keySet()) {
            if (!ev.created().containsKey(key)) {
                half++;
                failures.add("half-visible: " + key + " is in the primary but was never announced");
            }
        }
        figures.put("halfVisible", half);
    }

    /** Every point on the target; its restore from there equals the model at its snapshot moment. */
    private void checkTarget(Map<String, Manifest> points) throws IOException {
        int onTarget = 0;
        int identical = 0;
        Path scratch = Files.createDirectories(o.dir().resolve("restore"));
        Map<String, PatternedVm> byName = new HashMap<>();
        vms.forEach(v -> byName.put(v.name(), v));
        try (ObjectTarget t = target(BUCKET)) {
            Repository replica = Repository.open(t);
            for (Manifest m : points.values()) {
                Optional<Manifest> there;
                try {
                    there = replica.manifest(m.vm(), m.id());
                } catch (RuntimeException e) {
                    failures.add(
                            "manifest " + m.vm() + "/" + m.id() + " on the target cannot be read: " + e.getMessage());
                    continue;
                }
                if (there.isEmpty()) {
                    failures.add("restore point " + m.vm() + "/" + m.id() + " is not on the target");
                    continue;
                }
                onTarget++;
                Map<String, String> restored = new LinkedHashMap<>();
                try {
                    for (DiskEntry d : there.get().disks()) {
                        Path image = scratch.resolve(m.vm() + "-" + d.name() + ".raw");
                        Files.deleteIfExists(image);
                        new Restorer(replica, 4).restoreDisk(there.get(), d.name(), image, Restorer.Progress.NONE);
                        restored.put(d.name(), Soak.sha256(image)); // our own checksum, not the restorer's
                        Files.delete(image);
                    }
                } catch (IOException | RuntimeException e) {
                    failures.add("restore of " + m.vm() + "/" + m.id() + " from the target failed: " + e.getMessage());
                    continue;
                }
                PatternedVm vm = byName.get(m.vm());
                if (vm == null) {
                    failures.add("restore point " + m.vm() + "/" + m.id() + " is of a VM the run does not know");
                    continue;
                }
                SoakModel.Verdict v = vm.model.judge(m.capturedAt(), CAPTURE_SLACK, restored);
                if (v.accepted()) {
                    identical++;
                } else {
                    failures.add("restore of " + m.vm() + "/" + m.id() + " (captured " + m.capturedAt()
                            + ") from the target is not the disk at its snapshot moment: " + v.detail());
                }
            }
        }
        ObjectNode p = figures.putObject("points");
        p.put("primary", points.size());
        p.put("onTarget", onTarget);
        p.put("restoredBitIdentical", identical);
        if (points.isEmpty()) {
            failures.add("no restore point was committed at all");
        }
    }

    /**
     * Per kill and VM: the lag of the first firing after the kill (its publish time minus the time
     * it was due: the previous firing plus an interval) and the time from the kill to the VM's next
     * captured snapshot.
     */
    private void lagAfterKills(Events ev) {
        Map<String, List<Map.Entry<SnapshotJob, Instant>>> byVm = new TreeMap<>();
        for (Map.Entry<String, SnapshotJob> e : ev.jobs().entrySet()) {
            byVm.computeIfAbsent(e.getValue().vm(), v -> new ArrayList<>())
                    .add(Map.entry(e.getValue(), ev.published().get(e.getKey())));
        }
        byVm.values().forEach(l -> l.sort(Comparator.comparing(x -> x.getKey().scheduledFor())));
        Map<String, List<Instant>> capturedByVm = new TreeMap<>();
        for (Map.Entry<String, Instant> c : ev.captured().entrySet()) {
            SnapshotJob j = ev.jobs().get(c.getKey());
            if (j != null) {
                capturedByVm.computeIfAbsent(j.vm(), v -> new ArrayList<>()).add(c.getValue());
            }
        }
        capturedByVm.values().forEach(Collections::sort);
        // baseline: every firing before the first kill
        Instant firstKill = kills.isEmpty() ? Instant.MAX : kills.get(0).at();
        List<Double> baseline = new ArrayList<>();
        byVm.values().forEach(l -> l.stream()
                .filter(x -> x.getValue().isBefore(firstKill))
                .forEach(x -> baseline.add(lagSeconds(x.getKey(), x.getValue()))));
        ObjectNode lag = figures.putObject("firingLag");
        lag.put("baselineFirings", baseline.size());
        lag.put("baselineP50Seconds", percentile(baseline, 50));
        lag.put("baselineP99Seconds", percentile(baseline, 99));
        ArrayNode perKill = lag.putArray("afterKills");
        Map<String, List<Double>> byKind = new TreeMap<>();
        for (Kill k : kills) {
            ObjectNode n = perKill.addObject();
            n.put("kill", k.n());
            n.put("kind", k.kind());
            n.put("victim", k.victim());
            n.put("at", k.at().toString());
            n.put("upAfterSeconds", seconds(k.at(), k.ready()));
            ObjectNode per = n.putObject("vms");
            for (Map.Entry<String, List<Map.Entry<SnapshotJob, Instant>>> e : byVm.entrySet()) {
                List<Map.Entry<SnapshotJob, Instant>> l = e.getValue();
                ObjectNode v = per.putObject(e.getKey());
                for (int i = 1; i < l.size(); i++) {
                    Instant due = l.get(i - 1).getKey().scheduledFor().plus(o.interval());
                    if (!due.isBefore(k.at())) {
                        // against the grid: a firing re-phased after a failover is late by its delay
                        Instant scheduled = l.get(i).getKey().scheduledFor();
                        double firingLag = seconds(
                                scheduled.isBefore(due) ? scheduled : due,
                                l.get(i).getValue());
                        v.put("firingLagSeconds", firingLag);
                        byKind.computeIfAbsent(k.kind(), x -> new ArrayList<>()).add(firingLag);
                        break;
                    }
                }
                capturedByVm.getOrDefault(e.getKey(), List.of()).stream()
                        .filter(c -> c.isAfter(k.at()))
                        .findFirst()
                        .ifPresent(c -> v.put("nextCaptureAfterSeconds", seconds(k.at(), c)));
            }
        }
        ArrayNode lines = lag.putArray("perKill");
        for (int i = 0; i < perKill.size(); i++) {
            ObjectNode n = (ObjectNode) perKill.get(i);
            StringBuilder b = new StringBuilder(String.format(
                    Locale.ROOT,
                    "kill %d %s %s (up again after %.1f s):",
                    n.path("kill").asInt(),
                    n.path("kind").asText(),
                    n.path("victim").asText(),
                    n.path("upAfterSeconds").asDouble()));
            n.path("vms")
                    .fields()
                    .forEachRemaining(v -> b.append(String.format(
                            Locale.ROOT,
                            " %s firing lag %s s, next capture after %s s;",
                            v.getKey(),
                            v.getValue().has("firingLagSeconds")
                                    ? String.format(
                                            Locale.ROOT,
                                            "%.2f",
                                            v.getValue()
                                                    .path("firingLagSeconds")
                                                    .asDouble())
                                    : "-",
                            v.getValue().has("nextCaptureAfterSeconds")
                                    ? String.format(
                                            Locale.ROOT,
                                            "%.1f",
                                            v.getValue()
                                                    .path("nextCaptureAfterSeconds")
                                                    .asDouble())
                                    : "-")));
            lines.add(b.toString());
        }
        ObjectNode kinds = lag.putObject("afterKillP99SecondsByKind");
        byKind.forEach((kind, l) -> kinds.put(kind, percentile(l, 99)));
        ObjectNode maxKind = lag.putObject("afterKillMaxSecondsByKind");
        byKind.forEach((kind, l) ->
                maxKind.put(kind, l.stream().mapToDouble(d -> d).max().orElse(0)));
        // a worker host's restart to the first capture of one of its VMs
        ArrayNode restart = figures.putArray("workerRestartToFirstCaptureSeconds");
        for (Kill k : kills) {
            if (!k.kind().equals("worker")) {
                continue;
            }
            Instant first = null;
            for (Map.Entry<String, Instant> c : ev.captured().entrySet()) {
                SnapshotJob j = ev.jobs().get(c.getKey());
                if (j != null && j.host().equals(k.victim()) && c.getValue().isAfter(k.restarted())) {
                    first = first == null || c.getValue().isBefore(first) ? c.getValue() : first;
                }
            }
            restart.add(
                    first == null
                            ? "none"
                            : String.format(Locale.ROOT, "%s: %.1f s", k.victim(), seconds(k.restarted(), first)));
        }
    }

    private static double lagSeconds(SnapshotJob job, Instant published) {
        return seconds(job.scheduledFor(), published);
    }

    /** The migrated VM's first point on its new host: incremental to its parent, or full and why. */
    private void checkMigration(Map<String, Manifest> points) {
        if (migration == null) {
            return;
        }
        ObjectNode m = figures.putObject("migration");
        m.put("vm", migration.vm());
        m.put("from", migration.from());
        m.put("to", migration.to());
        List<Manifest> after = points.values().stream()
                .filter(p -> p.vm().equals(migration.vm()) && p.host().equals(migration.to()))
                .sorted(Comparator.comparing(Manifest::capturedAt))
                .toList();
        if (after.isEmpty()) {
            failures.add("the migrated VM " + migration.vm() + " has no point taken on " + migration.to());
            return;
        }
        Manifest first = after.get(0);
        m.put("firstPointOnNewHost", first.id());
        m.put("parent", first.parent().orElse(""));
        List<String> reasons = new ArrayList<>();
        for (DiskEntry d : first.disks()) {
            d.fullReason().map(FullReason::toString).ifPresent(reasons::add);
        }
        m.put("fullReason", String.join("; ", reasons));
        boolean chained = first.parent().isPresent() && reasons.isEmpty();
        m.put("keptChain", chained);
        if (!chained && reasons.isEmpty()) {
            failures.add("the migrated VM's first point on " + migration.to() + " (" + first.id()
                    + ") neither continues the chain nor says why it took a full");
        }
        if (after.size() > 1) {
            Manifest second = after.get(1);
            m.put(
                    "secondPointIncremental",
                    second.parent().isPresent()
                            && second.disks().stream()
                                    .allMatch(d -> d.fullReason().isEmpty()));
        }
    }

    // -------------------------------------------------------------------- replication throughput

    /**
     * Same-run replication throughput: the primary as it is now shipped to an empty bucket by one
     * replicator, then to another empty bucket by two; timed until the bucket holds every point.
     */
    private void replicationBench() throws IOException {
        allProcs().forEach(Proc::stop);
        int points;
        long bytes;
        try (FileObjectTarget t = new FileObjectTarget(primary)) {
            points = (int) t.list(ObjectKeys.MANIFESTS).stream()
                    .filter(k -> ObjectKeys.restorePointIdOf(k) != null)
                    .count();
        }
        try (java.util.stream.Stream<Path> files = Files.walk(primary)) {
            bytes = files.filter(Files::isRegularFile)
                    .mapToLong(f -> f.toFile().length())
                    .sum();
        }
        ObjectNode r = figures.putObject("replicationBench");
        r.put("points", points);
        r.put("primaryBytes", bytes);
        for (int n = 1; n <= 2; n++) {
            String bucket = BUCKET + "-tput" + n;
            createBucket(bucket);
            List<Proc> reps = new ArrayList<>();
            for (int i = 1; i <= n; i++) {
                reps.add(new Proc(
                        "tput" + n + "-rep" + i, "replicator", config("tput" + n + "-rep" + i, "replicator", bucket)));
            }
            Instant start = Instant.now();
            reps.forEach(Proc::start);
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
            int there = 0;
            try (ObjectTarget t = target(bucket)) {
                while (System.nanoTime() < deadline) {
                    there = (int) t.list(ObjectKeys.MANIFESTS).stream()
                            .filter(k -> ObjectKeys.restorePointIdOf(k) != null)
                            .count();
                    if (there >= points) {
                        break;
                    }
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
                }
            }
            double secs = secondsSince(start);
            reps.forEach(Proc::stop);
            ObjectNode x = r.putObject(n + "replicator" + (n > 1 ? "s" : ""));
            x.put("seconds", secs);
            x.put("pointsShipped", there);
            x.put("pointsPerSecond", there / secs);
            x.put("mibPerSecond", bytes / secs / (1 << 20));
            progress.accept(String.format(
                    Locale.ROOT, "replication with %d replicator(s): %d points in %.1f s", n, there, secs));
            if (there < points) {
                failures.add(n + " replicator(s) shipped " + there + " of " + points + " points within 10 min");
            }
        }
        if (r.has("1replicator") && r.has("2replicators")) {
            r.put(
                    "speedupOfTwo",
                    r.path("1replicator").path("seconds").asDouble()
                            / r.path("2replicators").path("seconds").asDouble());
        }
    }

    private void createBucket(String bucket) {
        try (software.amazon.awssdk.services.s3.S3Client c = software.amazon.awssdk.services.s3.S3Client.builder()
                .endpointOverride(s3.endpoint())
                .region(software.amazon.awssdk.regions.Region.of(s3.region()))
                .forcePathStyle(true)
                .credentialsProvider(software.amazon.awssdk.auth.credentials.StaticCredentialsProvider.create(
                        software.amazon.awssdk.auth.credentials.AwsBasicCredentials.create(
                                s3.accessKey(), s3.secretKey())))
                .httpClient(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.create())
                .build()) {
            c.createBucket(b -> b.bucket(bucket));
        }
    }

    private ObjectTarget target(String bucket) {
        S3TargetSpec spec = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket(bucket)
                .prefix("topo")
                .pathStyle(true)
                .build();
        return S3ObjectTarget.create(spec, S3Credentials.of(s3.accessKey(), s3.secretKey()));
    }

    // ----------------------------------------------------------------------------------- helpers

    static double percentile(List<Double> values, int p) {
        if (values.isEmpty()) {
            return 0;
        }
        List<Double> s = new ArrayList<>(values);
        Collections.sort(s);
        int i = (int) Math.ceil(p / 100.0 * s.size()) - 1;
        return s.get(Math.max(0, Math.min(s.size() - 1, i)));
    }

    private static double seconds(Instant from, Instant to) {
        return Duration.between(from, to).toMillis() / 1000.0;
    }

    private static double secondsSince(Instant from) {
        return seconds(from, Instant.now());
    }

    private static int count(String text, String needle) {
        int n = 0;
        for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }

    private static void sleep(Duration d) {
        if (!d.isNegative() && !d.isZero()) {
            LockSupport.parkNanos(d.toNanos());
        }
    }

    private void writerFailed(String failure) {
        synchronized (failures) {
            failures.add(failure);
        }
    }

    private static String lastLines(Path log, int n) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join(" | ", lines.subList(Math.max(0, lines.size() - n), lines.size()));
        } catch (IOException e) {
            return "(log unreadable)";
        }
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException e) {
            return "?";
        }
    }
}
