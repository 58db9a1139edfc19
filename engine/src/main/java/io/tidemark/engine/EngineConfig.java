package io.tidemark.engine;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.InvalidTypeIdException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.tidemark.core.InputProblem;
import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.Passphrase;
import io.tidemark.policies.BandwidthSyntax;
import io.tidemark.policies.Suggestions;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.TargetSpecException;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.JobBounds;
import io.tidemark.workers.Niceness;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.io.StringReader;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicReference;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * The engine's own settings (not policies): where it keeps data, how it reaches Kafka, where the
 * VMs' QMP sockets are, and the replication targets policies may name. Secrets are never written
 * here: a target names the environment variable or file that holds each one.
 *
 * <pre>
 * host: hv1                      # this host's name; jobs for its VMs go to tidemark.jobs.hv1
 * data: /var/lib/tidemark        # primary repository (unless repository: says), embedded broker, scratch
 * repository: /mnt/tidemark      # the primary repository every role of the fleet shares: a directory
 *                                # (local disk, NFS mount) or a mapping like a target (type: s3 | rados | file);
 *                                # absent = &lt;data&gt;/repo, host-local
 * kafka: ""                      # bootstrap servers; empty = embedded single-node broker
 * qmpDir: /run/tidemark/qmp      # one &lt;vm&gt;.qmp socket per VM on this host
 * hypervisor:                    # how VMs are reached; absent = QMP sockets in qmpDir
 *   type: libvirt                # qmp (default) | libvirt
 *   uri: qemu:///system          # libvirt only: the connection URI
 * policies: /etc/tidemark/policies
 * metrics: 127.0.0.1:9464        # Prometheus /metrics; empty = off
 * statusPage:                    # read-only status page on the metrics listener (/status); absent = off
 *   tokenFile: /etc/tidemark/status.token    # the token that opens it (at least 16 bytes, mode 0600)
 * hooks:                         # pre-deploy hook endpoint; absent = on only if TIDEMARK_HOOK_SECRET is set
 *   address: 127.0.0.1:9465      # empty = off
 *   secretFile: /etc/tidemark/hook.secret      # or secretEnv (default TIDEMARK_HOOK_SECRET)
 * maxConcurrentJobs: 2           # snapshot jobs of this host at once (jobs of one VM never overlap)
 * jobDeadline: 30m               # longest one snapshot job may run; then it is cancelled (JobFailed)
 * backupMemory: 8MiB             # chunk buffers one disk's backup may hold (bounds its heap; default 8MiB)
 * worker:                        # limits shared by all snapshot jobs of this host (each job also has its policy's qos)
 *   hostReadBandwidth: 200MiB/s  # the most all jobs together read from VM disks per second; unset = unlimited
 *   hostReadIops: 5000           # the most read requests all jobs together send per second; unset = unlimited
 *   captureCbwTimeout: 10s       # longest a guest write waits for its copy into a capture's scratch; off = no bound
 *   backupNice: 10               # nice value (0-19) of a backup's reading and storing threads; 0 = normal priority
 * encryption:                    # passphrase of encrypted repositories; a new one is encrypted when one is given
 *   passphraseFile: /etc/tidemark/passphrase   # or passphraseEnv (default TIDEMARK_PASSPHRASE)
 *   kdfIterations: 600000        # PBKDF2-HMAC-SHA256 iterations for new key objects
 * targets:
 *   offsite:
 *     type: s3                   # s3 | rados | file
 *     endpoint: https://s3.eu-west-1.amazonaws.com
 *     region: eu-west-1
 *     bucket: backups
 *     prefix: tidemark
 *     accessKeyEnv: TIDEMARK_S3_ACCESS_KEY     # or accessKeyFile
 *     secretKeyFile: /etc/tidemark/s3.secret   # or secretKeyEnv
 *     retryDeadline: 5m          # how long one object operation is retried (default 5m)
 *     bandwidthLimit: 20MiB/s    # per direction; unset = unlimited
 *     objectLockMode: COMPLIANCE # optional S3 Object Lock on everything but state/
 *     objectLockDays: 30
 *   ceph:
 *     type: rados                # a Ceph pool through librados
 *     monHost: v2:10.0.0.1:3300  # or confFile: /etc/ceph/ceph.conf
 *     clientName: client.tidemark
 *     keyFile: /etc/tidemark/ceph.key          # or keyEnv
 *     pool: tidemark
 *     prefix: site-a
 * </pre>
 */
public record EngineConfig(
        String host,
        Path data,
        KafkaConfig kafka,
        Path qmpDir,
        Path policies,
        Map<String, TargetSpec> targets,
        String metrics,
        HooksConfig hooks,
        HypervisorConfig hypervisor,
        EncryptionConfig encryption,
        Integer maxConcurrentJobs,
        String jobDeadline,
        String backupMemory,
        List<String> roles,
        SchedulerConfig scheduler,
        StatusPageConfig statusPage,
        TargetSpec repository,
        WorkerConfig worker,
        TierSweepConfig tierSweep) {

    /** Where the data directory is when neither the config nor {@code --data} says. */
    public static final Path DEFAULT_DATA = Path.of("tidemark-data");

    /** Where the policies are when neither the config nor {@code --policies} says. */
    public static final Path DEFAULT_POLICIES = Path.of("policies");

    /** Where the VMs' QMP sockets are when neither the config nor {@code --qmp-dir} says. */
    public static final Path DEFAULT_QMP_DIR = Path.of("/run/tidemark/qmp");

    /** Where {@code tidemark run} serves metrics when the config does not say. */
    public static final String DEFAULT_METRICS = "127.0.0.1:9464";

    public EngineConfig {
        targets = targets == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(targets));
        kafka = kafka == null ? KafkaConfig.embedded() : kafka;
        roles = roles == null ? List.of() : List.copyOf(roles);
        Role.parse(roles); // an unknown role fails here, at its key
        hypervisor = hypervisor == null ? HypervisorConfig.qmp() : hypervisor;
        worker = worker == null ? WorkerConfig.UNLIMITED : worker;
        tierSweep = tierSweep == null ? TierSweepConfig.DEFAULT : tierSweep;
        tierSweep.everyOrDefault(); // a bad value fails here, at its key
        tierSweep.firstOrDefault();
        if (maxConcurrentJobs != null && (maxConcurrentJobs < 1 || maxConcurrentJobs > MAX_CONCURRENT_JOBS)) {
            throw new PermanentException("maxConcurrentJobs must be from 1 to " + MAX_CONCURRENT_JOBS + " (default "
                    + DEFAULT_CONCURRENT_JOBS + "), got " + maxConcurrentJobs);
        }
        if (backupMemory != null) {
            parseBackupMemory(backupMemory);
        }
        if (jobDeadline != null) {
            Duration d = Targets.duration("jobDeadline", jobDeadline);
            if (d.compareTo(MIN_JOB_DEADLINE) < 0) {
                throw new PermanentException("jobDeadline must be at least " + MIN_JOB_DEADLINE.toSeconds()
                        + "s (default " + JobBounds.DEFAULT_DEADLINE.toMinutes() + "m), got " + jobDeadline);
            }
        }
    }

    /**
     * How this host's VMs are reached: {@code qmp} (the default; every VM's QMP socket in {@code
     * qmpDir}) or {@code libvirt} (the running domains of {@code uri}, captured with libvirt's backup
     * API).
     *
     * @param type {@code qmp} or {@code libvirt}; null = {@code qmp}
     * @param uri the libvirt connection URI, for example {@code qemu:///system}; libvirt only
     */
    public record HypervisorConfig(String type, String uri) {

        /** The default: QMP sockets. */
        public static HypervisorConfig qmp() {
            return new HypervisorConfig("qmp", null);
        }

        /** The running domains of a libvirt URI. */
        public static HypervisorConfig libvirt(String uri) {
            return new HypervisorConfig("libvirt", uri);
        }

        /**
         * True for libvirt, false for QMP.
         *
         * @throws PermanentException for another type, or libvirt without a URI
         */
        public boolean isLibvirt() {
            String t = type == null ? "qmp" : type;
            if (t.equals("qmp")) {
                return false;
            }
            if (!t.equals("libvirt")) {
                throw new PermanentException(
                        "hypervisor type '" + type + "' is unknown; use qmp (QMP sockets) or libvirt (with uri:)");
            }
            if (uri == null || uri.isBlank()) {
                throw new PermanentException(
                        "hypervisor type libvirt needs uri: (for example qemu:///system) in the engine config");
            }
            return true;
        }
    }

    /** How many snapshot jobs of this host run at once unless {@code maxConcurrentJobs} says. */
    public static final int DEFAULT_CONCURRENT_JOBS = 2;

    /** The most snapshot jobs of one host that may run at once. */
    public static final int MAX_CONCURRENT_JOBS = 32;

    /** How many snapshot jobs of this host may run at once (jobs of one VM never overlap). */
    public int concurrentJobs() {
        return maxConcurrentJobs != null ? maxConcurrentJobs : DEFAULT_CONCURRENT_JOBS;
    }

    /** The least {@code backupMemory} accepted: two chunks of the largest chunk size in flight. */
    public static final long MIN_BACKUP_MEMORY = 1L << 20;

    /**
     * The chunk buffers one disk's backup may hold ({@code backupMemory}, such as {@code 16MiB};
     * default {@link BackupWorker#DEFAULT_BACKUP_MEMORY}): bounds a backup's heap whatever the disk
     * size.
     */
    public long backupMemoryOrDefault() {
        return backupMemory != null ? parseBackupMemory(backupMemory) : BackupWorker.DEFAULT_BACKUP_MEMORY;
    }

    private static long parseBackupMemory(String text) {
        long bytes = BandwidthSyntax.parse(text.strip() + "/s")
                .orElseThrow(() -> new PermanentException("backupMemory '" + text
                        + "' is not a size such as 16MiB or 64MiB (KiB, MiB, GiB: powers of 1024)"));
        if (bytes < MIN_BACKUP_MEMORY) {
            throw new PermanentException("backupMemory must be at least 1MiB (default "
                    + (BackupWorker.DEFAULT_BACKUP_MEMORY >> 20) + "MiB), got " + text);
        }
        return bytes;
    }

    /** The shortest {@code jobDeadline} accepted. */
    public static final Duration MIN_JOB_DEADLINE = Duration.ofSeconds(1);

    /** How long one snapshot job may run before it is cancelled: {@code jobDeadline}, default 30 min. */
    public Duration jobDeadlineOrDefault() {
        return jobDeadline != null ? Targets.duration("jobDeadline", jobDeadline) : JobBounds.DEFAULT_DEADLINE;
    }

    /** The data directory: {@code data}, else {@link #DEFAULT_DATA}. */
    public Path dataOrDefault() {
        return data != null ? data : DEFAULT_DATA;
    }

    /**
     * The primary repository every role of this process opens: {@code repository:} (shared by the
     * fleet's hosts: a directory on NFS, an S3 bucket prefix, a RADOS pool), else the host-local
     * {@code <data>/repo}.
     */
    public TargetSpec primary() {
        return repository != null
                ? repository
                : FileTargetSpec.builder().path(dataOrDefault().resolve("repo")).build();
    }

    /** Whether the primary is the host-local default {@code <data>/repo} ({@code repository:} unset). */
    public boolean primaryIsDefault() {
        return repository == null;
    }

    /** The policy directory: {@code policies}, else {@link #DEFAULT_POLICIES}. */
    public Path policiesOrDefault() {
        return policies != null ? policies : DEFAULT_POLICIES;
    }

    /**
     * This config with every unset setting at its default, as {@code tidemark run} uses it: {@code
     * host} (else the one {@code defaultHost} finds), the data, policy and QMP directories, and the metrics address.
     */
    public EngineConfig withDefaults(java.util.function.Supplier<String> defaultHost) {
        return toBuilder()
                .host(host != null ? host : defaultHost.get())
                .data(dataOrDefault())
                .qmpDir(qmpDir != null ? qmpDir : DEFAULT_QMP_DIR)
                .policies(policiesOrDefault())
                .metrics(metrics != null ? metrics : DEFAULT_METRICS)
                .build();
    }

    /** Embedded defaults: everything unset (the caller fills in what it needs). */
    public static EngineConfig empty() {
        return builder().build();
    }

    /** A builder with everything unset. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this config's settings. */
    public Builder toBuilder() {
        return new Builder()
                .host(host)
                .data(data)
                .kafka(kafka)
                .qmpDir(qmpDir)
                .policies(policies)
                .targets(targets)
                .metrics(metrics)
                .hooks(hooks)
                .hypervisor(hypervisor)
                .encryption(encryption)
                .maxConcurrentJobs(maxConcurrentJobs)
                .jobDeadline(jobDeadline)
                .backupMemory(backupMemory)
                .roles(roles)
                .scheduler(scheduler)
                .statusPage(statusPage)
                .repository(repository)
                .worker(worker)
                .tierSweep(tierSweep);
    }

    /** The roles this process runs ({@code roles:}; every role when none is named). */
    public java.util.Set<Role> roleSet() {
        return Role.parse(roles);
    }

    /** Builds an {@link EngineConfig} setting by setting; {@link #build()} checks them. */
    public static final class Builder {
        private String host;
        private Path data;
        private KafkaConfig kafka;
        private Path qmpDir;
        private Path policies;
        private Map<String, TargetSpec> targets;
        private String metrics;
        private HooksConfig hooks;
        private HypervisorConfig hypervisor;
        private EncryptionConfig encryption;
        private Integer maxConcurrentJobs;
        private String jobDeadline;
        private String backupMemory;
        private List<String> roles;
        private SchedulerConfig scheduler;
        private StatusPageConfig statusPage;
        private TargetSpec repository;
        private WorkerConfig worker;
        private TierSweepConfig tierSweep;

        /** When the replicator role sweeps the tier tags; null = {@link TierSweepConfig#DEFAULT}. */
        public Builder tierSweep(TierSweepConfig tierSweep) {
            this.tierSweep = tierSweep;
            return this;
        }

        /** The limits shared by all snapshot jobs of this host; null = none. */
        public Builder worker(WorkerConfig worker) {
            this.worker = worker;
            return this;
        }

        private Builder() {}

        /** The status page; null = off. */
        public Builder statusPage(StatusPageConfig statusPage) {
            this.statusPage = statusPage;
            return this;
        }

        /** The primary repository; null = {@code <data>/repo}. */
        public Builder repository(TargetSpec repository) {
            this.repository = repository;
            return this;
        }

        /** This host's name. */
        public Builder host(String host) {
            this.host = host;
            return this;
        }

        /** The data directory (primary repository, embedded broker, scratch space). */
        public Builder data(Path data) {
            this.data = data;
            return this;
        }

        /** Kafka bootstrap servers; empty or null = the embedded broker. */
        public Builder kafka(String kafka) {
            this.kafka = kafka == null ? null : KafkaConfig.of(kafka);
            return this;
        }

        /** The Kafka cluster: bootstrap servers, topic replication, security; null = the embedded broker. */
        public Builder kafka(KafkaConfig kafka) {
            this.kafka = kafka;
            return this;
        }

        /** The roles this process runs ({@code scheduler}, {@code worker}, {@code replicator}); empty = all. */
        public Builder roles(List<String> roles) {
            this.roles = roles;
            return this;
        }

        /** The scheduler's job store; null = in memory (one scheduler process). */
        public Builder scheduler(SchedulerConfig scheduler) {
            this.scheduler = scheduler;
            return this;
        }

        /** The directory of the VMs' QMP sockets. */
        public Builder qmpDir(Path qmpDir) {
            this.qmpDir = qmpDir;
            return this;
        }

        /** The policy directory. */
        public Builder policies(Path policies) {
            this.policies = policies;
            return this;
        }

        /** The replication targets by name. */
        public Builder targets(Map<String, TargetSpec> targets) {
            this.targets = targets;
            return this;
        }

        /** The metrics address ({@code host:port}); blank turns the endpoint off. */
        public Builder metrics(String metrics) {
            this.metrics = metrics;
            return this;
        }

        /** The pre-deploy hook endpoint; null turns it off. */
        public Builder hooks(HooksConfig hooks) {
            this.hooks = hooks;
            return this;
        }

        /** How this host's VMs are reached; null = QMP sockets in {@code qmpDir}. */
        public Builder hypervisor(HypervisorConfig hypervisor) {
            this.hypervisor = hypervisor;
            return this;
        }

        /** The encryption settings; null = passphrase from {@value EncryptionConfig#DEFAULT_PASSPHRASE_ENV} only. */
        public Builder encryption(EncryptionConfig encryption) {
            this.encryption = encryption;
            return this;
        }

        /** Snapshot jobs of this host at once; null = {@value #DEFAULT_CONCURRENT_JOBS}. */
        public Builder maxConcurrentJobs(Integer maxConcurrentJobs) {
            this.maxConcurrentJobs = maxConcurrentJobs;
            return this;
        }

        /** The longest one snapshot job may run, as {@code 30s}, {@code 10m} or {@code 1h}; null = the default. */
        public Builder jobDeadline(String jobDeadline) {
            this.jobDeadline = jobDeadline;
            return this;
        }

        /** The chunk buffers one disk's backup may hold, as {@code 16MiB}; null = the default. */
        public Builder backupMemory(String backupMemory) {
            this.backupMemory = backupMemory;
            return this;
        }

        /** The config; @throws PermanentException when a setting is out of range */
        public EngineConfig build() {
            return new EngineConfig(
                    host,
                    data,
                    kafka,
                    qmpDir,
                    policies,
                    targets,
                    metrics,
                    hooks,
                    hypervisor,
                    encryption,
                    maxConcurrentJobs,
                    jobDeadline,
                    backupMemory,
                    roles,
                    scheduler,
                    statusPage,
                    repository,
                    worker,
                    tierSweep);
        }
    }

    private static final ObjectMapper YAML = yaml();

    private static ObjectMapper yaml() {
        ObjectMapper mapper = new ObjectMapper(new YAMLFactory().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION))
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        TargetSpecYaml.register(mapper);
        return mapper;
    }

    /**
     * Reads and checks the engine config in {@code file}: every target is built from its {@code
     * type}'s spec, so a wrong setting fails here, with its place in the file, not when the target is
     * first used.
     *
     * @throws InvalidInputException listing every problem as {@code file:line:column: key.path:
     *     message}
     * @throws PermanentException when the file cannot be read
     */
    public static EngineConfig load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new PermanentException("engine config " + file + " does not exist; pass --config with a readable"
                    + " file (see docs/configuration.md) or leave it out to run on embedded defaults");
        }
        try {
            JsonNode root = YAML.readTree(file.toFile());
            if (!(root instanceof ObjectNode settings)) {
                return YAML.readValue(file.toFile(), EngineConfig.class); // reports what the file holds instead
            }
            JsonNode targetsNode = settings.get("targets");
            JsonNode repositoryNode = settings.get("repository");
            ObjectNode rest = settings.deepCopy();
            if (targetsNode instanceof ObjectNode) {
                rest.remove("targets"); // read below, target by target, so that every problem is found
            }
            rest.remove("repository"); // read below, like a target
            EngineConfig c = YAML.treeToValue(rest, EngineConfig.class);
            List<InputProblem> problems = new ArrayList<>();
            if (targetsNode instanceof ObjectNode targets) {
                Map<String, TargetSpec> specs = new LinkedHashMap<>();
                targets.fields().forEachRemaining(e -> readTarget(file, e.getKey(), e.getValue(), problems)
                        .ifPresent(spec -> specs.put(e.getKey(), spec)));
                c = c.toBuilder().targets(specs).build();
            }
            if (repositoryNode != null && !repositoryNode.isNull()) {
                Optional<TargetSpec> primary = readRepository(file, repositoryNode, problems);
                if (primary.isPresent()) {
                    c = c.toBuilder().repository(primary.get()).build();
                }
            }
            try {
                c.hypervisor().isLibvirt();
            } catch (PermanentException e) {
                boolean badType = c.hypervisor().type() != null
                        && !List.of("qmp", "libvirt").contains(c.hypervisor().type());
                List<Object> where = List.of("hypervisor", badType ? "type" : "uri");
                Optional<Mark> mark = locateAt(file, where, false);
                if (mark.isEmpty()) {
                    mark = locateAt(file, List.of("hypervisor"), true);
                }
                problems.add(new InputProblem(
                        file,
                        mark.map(m -> m.getLine() + 1).orElse(0),
                        mark.map(m -> m.getColumn() + 1).orElse(0),
                        "hypervisor." + (badType ? "type" : "uri"),
                        e.getMessage()));
            }
            if (!problems.isEmpty()) {
                throw InvalidInputException.of(problems, null);
            }
            return c;
        } catch (JsonProcessingException e) {
            throw InvalidInputException.of(List.of(problem(file, e)), e);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot read the engine config " + file + " ("
                            + e.getClass().getSimpleName() + "); check the path and its permissions",
                    e);
        }
    }

    /**
     * The spec of target {@code name}, chosen by its {@code type} (default {@value
     * TargetSpec#DEFAULT_TYPE}); empty after adding to {@code problems} each problem found: an
     * unknown type, a key of another type or of none, a value of the wrong form, a missing or
     * inconsistent setting. A key found wrong is left out and the rest read again, so that one run
     * reports every problem of the target.
     */
    private static Optional<TargetSpec> readTarget(Path file, String name, JsonNode node, List<InputProblem> problems) {
        return readSpec(file, List.of("targets", name), node, problems);
    }

    /**
     * The primary repository: a directory ({@code repository: /mnt/tidemark}), or a mapping read as
     * a target is ({@code type: s3}, {@code rados} or {@code file} and that type's settings).
     */
    private static Optional<TargetSpec> readRepository(Path file, JsonNode node, List<InputProblem> problems) {
        if (node.isTextual()) {
            if (node.asText().isBlank()) {
                problems.add(at(
                        file,
                        List.of("repository"),
                        null,
                        false,
                        "expected a directory or a mapping (type: s3 | rados | file and its settings); leave"
                                + " repository: out for <data>/repo"));
                return Optional.empty();
            }
            return Optional.of(
                    FileTargetSpec.builder().path(Path.of(node.asText())).build());
        }
        return readSpec(file, List.of("repository"), node, problems);
    }

    /** A target spec at {@code base} ({@code targets.<name>} or {@code repository}); see {@link #readTarget}. */
    private static Optional<TargetSpec> readSpec(
            Path file, List<Object> base, JsonNode node, List<InputProblem> problems) {
        if (!(node instanceof ObjectNode given)) {
            problems.add(at(
                    file, base, null, false, "expected a mapping of settings (type: and the settings of that type)"));
            return Optional.empty();
        }
        ObjectNode settings = given.deepCopy();
        if (!settings.has("type")) {
            settings.put("type", TargetSpec.DEFAULT_TYPE);
        }
        JsonNode typeNode = settings.get("type");
        String type = typeNode.isTextual() ? typeNode.asText() : typeNode.toString();
        for (int left = settings.size(); left >= 0; left--) {
            try {
                return Optional.of(YAML.treeToValue(settings, TargetSpec.class));
            } catch (InvalidTypeIdException e) {
                problems.add(at(
                        file,
                        base,
                        "type",
                        false,
                        "expected one of: " + String.join(", ", TargetSpec.TYPES.keySet()) + "; got \"" + type + "\""));
                return Optional.empty();
            } catch (JsonProcessingException e) {
                TargetSpecException spec = cause(e, TargetSpecException.class);
                if (spec != null) {
                    spec.problems().forEach(p -> problems.add(at(file, base, p.key(), false, p.message())));
                    return Optional.empty();
                }
                String key = e instanceof JsonMappingException m && !m.getPath().isEmpty()
                        ? m.getPath().get(0).getFieldName()
                        : null;
                if (key == null || !settings.has(key)) {
                    problems.add(at(file, base, key, false, message(e)));
                    return Optional.empty();
                }
                boolean unknown = e instanceof UnrecognizedPropertyException;
                problems.add(at(file, base, key, unknown, unknown ? unknownKey(type, key) : message(e)));
                settings.remove(key);
            }
        }
        return Optional.empty();
    }

    /** {@code unknown key 'k'}, with the known key meant, or else the known keys. */
    private static String unknownKey(String key, List<String> known) {
        String m = "unknown key '" + key + "'";
        Optional<String> closest = Suggestions.closest(key, known);
        if (closest.isPresent()) {
            return m + "; did you mean '" + closest.get() + "'? (docs/configuration.md lists the settings)";
        }
        return m + (known.isEmpty() ? "" : "; expected one of: " + String.join(", ", known));
    }

    /** An unknown key of a target: one that belongs to another type says so, others as any unknown key. */
    private static String unknownKey(String type, String key) {
        List<String> owners = TargetSpec.TYPES.keySet().stream()
                .filter(t -> !t.equals(type) && TargetSpecYaml.keys(t).contains(key))
                .toList();
        if (owners.isEmpty()) {
            List<String> known = new ArrayList<>(TargetSpecYaml.keys(type));
            known.add("type");
            return unknownKey(key, known.stream().sorted().toList());
        }
        return "'" + key + "' is a setting of type " + String.join(" and ", owners) + ", not of type " + type
                + "; remove it, or set the type this target really is";
    }

    private static <T extends Throwable> T cause(Throwable e, Class<T> kind) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (kind.isInstance(t)) {
                return kind.cast(t);
            }
        }
        return null;
    }

    /**
     * What is wrong at the place Jackson stopped, as a policy problem reads: the line and column,
     * the key path ({@code targets.offsite.secretKeyFile}) and what is allowed there; never a Java
     * class name.
     */
    static InputProblem problem(Path file, JsonProcessingException e) {
        JsonLocation at = e.getLocation();
        int line = at == null || at.getLineNr() < 1 ? 0 : at.getLineNr();
        int column = line == 0 ? 0 : Math.max(1, at.getColumnNr());
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof MarkedYAMLException y) { // broken YAML, even when met while mapping a value
                Mark mark = y.getProblemMark() != null ? y.getProblemMark() : y.getContextMark();
                String what = y.getProblem() != null ? y.getProblem() : y.getContext();
                return new InputProblem(
                        file,
                        mark == null ? 0 : mark.getLine() + 1,
                        mark == null ? 0 : mark.getColumn() + 1,
                        "",
                        "invalid YAML: " + (what == null ? "syntax error" : what.strip()));
            }
        }
        String path = "";
        if (e instanceof JsonMappingException m) {
            path = keyPath(m.getPath());
            // Jackson's location is where its parser stopped (past the key); find the key itself
            Optional<Mark> mark = locate(file, m.getPath(), e instanceof UnrecognizedPropertyException);
            if (mark.isPresent()) {
                line = mark.get().getLine() + 1;
                column = mark.get().getColumn() + 1;
            }
        }
        return new InputProblem(file, line, column, path, message(e));
    }

    /**
     * A problem at {@code base[.<key>]} ({@code targets.<target>} or {@code repository}), positioned at that key's value (at the key
     * itself if {@code atKey}), or at the target's name.
     */
    private static InputProblem at(Path file, List<Object> base, String key, boolean atKey, String message) {
        List<Object> path = new ArrayList<>(base);
        if (key != null) {
            path.add(key);
        }
        Optional<Mark> mark = locateAt(file, path, key == null || atKey);
        return new InputProblem(
                file,
                mark.map(m -> m.getLine() + 1).orElse(0),
                mark.map(m -> m.getColumn() + 1).orElse(0),
                String.join(".", path.stream().map(String::valueOf).toList()),
                message);
    }

    /** Where the key (or, for a wrong value, the value) at {@code refs} is in the YAML of {@code file}. */
    private static Optional<Mark> locate(Path file, List<JsonMappingException.Reference> refs, boolean key) {
        List<Object> path = new java.util.ArrayList<>();
        for (JsonMappingException.Reference r : refs) {
            path.add(r.getFieldName() != null ? r.getFieldName() : (Object) r.getIndex());
        }
        return locateAt(file, path, key);
    }

    /**
     * Where the key (or the value, unless {@code key}) at {@code path} (field names and list
     * indexes) is in the YAML of {@code file}.
     */
    private static Optional<Mark> locateAt(Path file, List<Object> path, boolean key) {
        Node node;
        try {
            node = new Yaml().compose(new StringReader(Files.readString(file)));
        } catch (IOException | RuntimeException e) {
            return Optional.empty(); // Jackson read it, so this is not expected; keep Jackson's position
        }
        Node keyNode = null;
        for (Object step : path) {
            keyNode = null;
            if (step instanceof String field && node instanceof MappingNode m) {
                Node next = null;
                for (NodeTuple t : m.getValue()) {
                    if (t.getKeyNode() instanceof ScalarNode k && k.getValue().equals(field)) {
                        keyNode = t.getKeyNode();
                        next = t.getValueNode();
                    }
                }
                node = next;
            } else if (step instanceof Integer i
                    && i >= 0
                    && node instanceof SequenceNode q
                    && i < q.getValue().size()) {
                node = q.getValue().get(i);
            } else {
                node = null;
            }
            if (node == null && keyNode == null) {
                return Optional.empty();
            }
        }
        Node found = key && keyNode != null ? keyNode : node != null ? node : keyNode;
        return Optional.ofNullable(found).map(Node::getStartMark);
    }

    private static String keyPath(List<JsonMappingException.Reference> refs) {
        StringBuilder s = new StringBuilder();
        for (JsonMappingException.Reference r : refs) {
            if (r.getFieldName() != null) {
                s.append(s.length() == 0 ? "" : ".").append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                s.append('[').append(r.getIndex()).append(']');
            }
        }
        return s.toString();
    }

    private static String message(JsonProcessingException e) {
        if (e instanceof UnrecognizedPropertyException u) {
            List<String> known = u.getKnownPropertyIds() == null
                    ? List.of()
                    : u.getKnownPropertyIds().stream()
                            .map(String::valueOf)
                            .sorted()
                            .toList();
            return unknownKey(u.getPropertyName(), known);
        }
        if (e instanceof InvalidFormatException f
                && f.getOriginalMessage() != null
                && f.getOriginalMessage().startsWith("expected ")) {
            return f.getOriginalMessage(); // a syntax of our own (durations, rates), described where it is read
        }
        if (e instanceof ValueInstantiationException v && v.getCause() instanceof PermanentException p) {
            return p.getMessage(); // a check of the settings themselves (maxConcurrentJobs, kdfIterations…)
        }
        if (e instanceof MismatchedInputException m && m.getTargetType() != null) {
            String got = e instanceof InvalidFormatException f && f.getValue() != null
                    ? ", got \"" + f.getValue() + "\""
                    : "";
            return "expected " + expected(m.getTargetType()) + got;
        }
        if (e instanceof ValueInstantiationException v && v.getCause() != null) {
            return "invalid value: " + v.getCause().getMessage();
        }
        String original = e.getOriginalMessage() == null ? "syntax error" : e.getOriginalMessage();
        String first = original.lines().findFirst().orElse("syntax error").strip();
        if (e instanceof JsonMappingException) {
            // a mapping error we do not describe ourselves: its text, without the Java names in it
            return "invalid value: " + first.replaceAll("`[^`]*`", "this setting");
        }
        if (first.startsWith("Duplicate field ")) {
            return "duplicate key "
                    + first.substring("Duplicate field ".length()).replace('"', '\'') + "; give each setting once";
        }
        return "invalid YAML: " + first;
    }

    /** A Java type as the settings describe values. */
    private static String expected(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "a whole number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == java.net.URI.class) {
            return "a URL such as https://s3.eu-west-1.amazonaws.com";
        }
        if (type == String.class || type == Path.class) {
            return "a single value (text)";
        }
        if (Map.class.isAssignableFrom(type) || type.isRecord()) {
            return "a mapping of settings";
        }
        if (java.util.Collection.class.isAssignableFrom(type) || type.isArray()) {
            return "a list";
        }
        return "another kind of value";
    }

    /** The encryption settings, the defaults when the config has none. */
    public EncryptionConfig encryptionOrDefaults() {
        return encryption != null ? encryption : EncryptionConfig.defaults();
    }

    /**
     * Encryption of repositories ({@code encryption:}, see docs/configuration.md). The passphrase
     * comes from {@code passphraseFile} if given, else from environment variable {@code
     * passphraseEnv} (default {@value #DEFAULT_PASSPHRASE_ENV}); it is never written here. When the
     * engine creates its primary repository and a passphrase is available, the repository is
     * encrypted; existing repositories keep what they are.
     *
     * @param passphraseFile a file holding the passphrase (mode 0600)
     * @param passphraseEnv the environment variable holding it
     * @param kdfIterations PBKDF2-HMAC-SHA256 iterations for new key objects (default {@value
     *     FormatConstants#DEFAULT_KDF_ITERATIONS})
     */
    public record EncryptionConfig(Path passphraseFile, String passphraseEnv, Integer kdfIterations) {

        public static final String DEFAULT_PASSPHRASE_ENV = "TIDEMARK_PASSPHRASE";

        public static EncryptionConfig defaults() {
            return new EncryptionConfig(null, null, null);
        }

        public EncryptionConfig {
            if (kdfIterations != null && kdfIterations < FormatConstants.MIN_KDF_ITERATIONS) {
                throw new PermanentException("encryption.kdfIterations must be at least "
                        + FormatConstants.MIN_KDF_ITERATIONS + " (the default is "
                        + FormatConstants.DEFAULT_KDF_ITERATIONS + "), got " + kdfIterations);
            }
        }

        /** The iterations for new key objects. */
        public int iterations() {
            return kdfIterations != null ? kdfIterations : FormatConstants.DEFAULT_KDF_ITERATIONS;
        }

        /** The same settings with the passphrase read from {@code file} (a --passphrase-file flag); null keeps them. */
        public EncryptionConfig withPassphraseFile(Path file) {
            return file == null ? this : new EncryptionConfig(file, passphraseEnv, kdfIterations);
        }

        /**
         * The passphrase, from the file if one is named, else from the environment; empty when
         * neither is set.
         *
         * @throws PermanentException if the file cannot be read, or the passphrase is empty
         */
        public Optional<Passphrase> passphrase(Map<String, String> env) {
            if (passphraseFile != null) {
                try {
                    return Optional.of(
                            Passphrase.of(Files.readString(passphraseFile), "passphrase file " + passphraseFile));
                } catch (IOException e) {
                    throw new PermanentException(
                            "cannot read the passphrase file " + passphraseFile + " ("
                                    + e.getClass().getSimpleName() + "); check the path and its permissions",
                            e);
                }
            }
            String var = passphraseEnv != null ? passphraseEnv : DEFAULT_PASSPHRASE_ENV;
            String value = env.get(var);
            return value == null ? Optional.empty() : Optional.of(Passphrase.of(value, "environment variable " + var));
        }

        /** Where {@link io.tidemark.repository.Repository#open} finds the passphrase: read once, when first asked. */
        public PassphraseSource source(Map<String, String> env) {
            AtomicReference<Passphrase> cached = new AtomicReference<>();
            return location -> cached.updateAndGet(
                    p -> p != null ? p : passphrase(env).orElseGet(() -> PassphraseSource.NONE.passphrase(location)));
        }
    }

    /**
     * The pre-deploy hook endpoint ({@code POST /hooks/pre-deploy}, see
     * docs/runbooks/pre-deploy-hook.md). The HMAC secret comes from {@code secretFile} if given,
     * else from environment variable {@code secretEnv} (default {@value #DEFAULT_SECRET_ENV}); it is
     * never written here.
     *
     * @param address {@code host:port} to listen on; null = {@value HookServer#DEFAULT_ADDRESS},
     *     empty = off
     * @param secretFile a file holding the secret (mode 0600)
     * @param secretEnv the environment variable holding the secret
     */
    public record HooksConfig(String address, Path secretFile, String secretEnv) {

        /** The variable the secret is read from when neither a file nor a variable is named. */
        public static final String DEFAULT_SECRET_ENV = "TIDEMARK_HOOK_SECRET";

        /** The defaults: {@value HookServer#DEFAULT_ADDRESS}, secret from {@value #DEFAULT_SECRET_ENV}. */
        public static HooksConfig defaults() {
            return new HooksConfig(null, null, null);
        }

        /** True unless {@code address} is empty. */
        public boolean enabled() {
            return address == null || !address.isBlank();
        }

        /** Where to listen. */
        public InetSocketAddress socketAddress() {
            return HookServer.address(address != null ? address : HookServer.DEFAULT_ADDRESS);
        }

        /**
         * Reads the secret from {@code secretFile}, or else from the environment.
         *
         * @throws PermanentException if it is missing or too short
         */
        public HookSecret secret(Map<String, String> env) {
            return HookSecret.load(secretFile, secretEnv != null ? secretEnv : DEFAULT_SECRET_ENV, env);
        }
    }

    /**
     * The read-only status page ({@code GET /status}, {@code /status.json}) on the metrics listener,
     * see docs/monitoring.md. The token that opens it is read from {@code tokenFile} at start and
     * never written here or logged.
     *
     * @param tokenFile a file holding the token, at least {@value StatusToken#MIN_BYTES} bytes (mode 0600)
     */
    public record StatusPageConfig(Path tokenFile) {

        /** True when a token file is named. */
        public boolean enabled() {
            return tokenFile != null;
        }

        /** The token; @throws PermanentException if the file cannot be read or the token is too short */
        StatusToken token() {
            return StatusToken.fromFile(tokenFile);
        }
    }

    /**
     * Limits shared by all snapshot jobs of this host ({@code worker:}), on top of each job's own
     * {@code qos} from its policy; the jobs running at once share them fairly (docs/design.md §5.3).
     *
     * @param hostReadBandwidth the most all jobs together read from the VMs' disks per second, such
     *     as {@code 200MiB/s}; null = unlimited
     * @param hostReadIops the most read requests all jobs together send to the disks per second;
     *     null = unlimited
     * @param backupNice the nice value (0–19) of a backup's reading and storing threads once the VM
     *     is captured, so the VMs run first when the host's CPUs are contended; null = {@link
     *     BackupWorker#DEFAULT_BACKUP_NICE}, 0 = the normal priority
     */
    public record WorkerConfig(
            String hostReadBandwidth, Long hostReadIops, String captureCbwTimeout, Integer backupNice) {

        /** No host limit, the default copy-before-write bound and backup priority. */
        public static final WorkerConfig UNLIMITED = new WorkerConfig(null, null, null, null);

        public WorkerConfig {
            if (backupNice != null && (backupNice < Niceness.MIN || backupNice > Niceness.MAX)) {
                throw new PermanentException("worker.backupNice must be a nice value from 0 (the normal priority) to"
                        + " 19 (the lowest), got " + backupNice + "; leave it out for "
                        + BackupWorker.DEFAULT_BACKUP_NICE);
            }
            if (captureCbwTimeout != null) {
                parseCbwTimeout(captureCbwTimeout); // fails here, at its key
            }
            if (hostReadBandwidth != null
                    && BandwidthSyntax.parse(hostReadBandwidth).isEmpty()) {
                throw new PermanentException("worker.hostReadBandwidth must be " + BandwidthSyntax.EXAMPLE + ", got \""
                        + hostReadBandwidth + "\"; leave it out for no host limit");
            }
            if (hostReadIops != null && hostReadIops <= 0) {
                throw new PermanentException("worker.hostReadIops must be a positive number of read requests per"
                        + " second such as 5000, got " + hostReadIops + "; leave it out for no host limit");
            }
        }

        /** {@code hostReadBandwidth} in bytes per second, if set. */
        public OptionalLong hostReadBytesPerSecond() {
            return hostReadBandwidth == null ? OptionalLong.empty() : BandwidthSyntax.parse(hostReadBandwidth);
        }

        /**
         * How long a guest write may wait for the copy of its old data into a capture's scratch image
         * ({@code captureCbwTimeout}, whole seconds; default 10 s); {@link Duration#ZERO} for {@code
         * off} (the classic fleece job: no bound).
         */
        public Duration captureCbwTimeoutOrDefault() {
            return captureCbwTimeout == null ? QmpHypervisor.DEFAULT_CBW_TIMEOUT : parseCbwTimeout(captureCbwTimeout);
        }

        private static Duration parseCbwTimeout(String captureCbwTimeout) {
            String t = captureCbwTimeout.strip();
            if (t.equals("off") || t.equals("false") || t.equals("0")) { // YAML reads a bare off as false
                return Duration.ZERO;
            }
            Duration d = Targets.duration("worker.captureCbwTimeout", t);
            if (d.compareTo(Duration.ofSeconds(1)) < 0) {
                throw new PermanentException(
                        "worker.captureCbwTimeout must be at least 1s, or off, got \"" + captureCbwTimeout + "\"");
            }
            return d;
        }

        /** {@code backupNice}, or {@link BackupWorker#DEFAULT_BACKUP_NICE}. */
        public int backupNiceOrDefault() {
            return backupNice == null ? BackupWorker.DEFAULT_BACKUP_NICE : backupNice;
        }

        /** {@code hostReadIops}, if set. */
        public OptionalLong hostReadIopsPerSecond() {
            return hostReadIops == null ? OptionalLong.empty() : OptionalLong.of(hostReadIops);
        }
    }

    /**
     * When the replicator role runs the tier sweep (ADR 20): {@code tierSweep: {every: 1h, first: 2m}}.
     * {@code every} is the pause between the end of one round and the start of the next ({@code off}
     * turns the engine's sweep off; operators then run {@code tidemark tier sweep}); {@code first} the
     * delay after start. A round does nothing while no policy's tiers name a storage class.
     */
    public record TierSweepConfig(String every, String first) {

        /** Every hour, the first two minutes after start. */
        public static final TierSweepConfig DEFAULT = new TierSweepConfig(null, null);

        public TierSweepConfig {
            everyOrDefault(); // fails here, at its key
            firstOrDefault();
        }

        /** The pause between rounds; empty when {@code every: off}. */
        public Optional<Duration> everyOrDefault() {
            if (every == null) {
                return Optional.of(Duration.ofHours(1));
            }
            String t = every.strip();
            if (t.equals("off") || t.equals("false")) { // YAML reads a bare off as false
                return Optional.empty();
            }
            Duration d = Targets.duration("tierSweep.every", t);
            if (d.compareTo(Duration.ofSeconds(10)) < 0) {
                throw new PermanentException("tierSweep.every must be at least 10s, or off, got \"" + every + "\"");
            }
            return Optional.of(d);
        }

        /** The delay after start before the first round. */
        public Duration firstOrDefault() {
            return first == null ? Duration.ofMinutes(2) : Targets.duration("tierSweep.first", first.strip());
        }
    }
}
