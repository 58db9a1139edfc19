package io.tidemark.app;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.tidemark.core.PermanentException;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.Passphrase;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.workers.JobBounds;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The engine's own settings (not policies): where it keeps data, how it reaches Kafka, where the
 * VMs' QMP sockets are, and the replication targets policies may name. Secrets are never written
 * here: a target names the environment variable or file that holds each one.
 *
 * <pre>
 * host: hv1                      # this host's name; jobs for its VMs go to tidemark.jobs.hv1
 * data: /var/lib/tidemark        # primary repository, embedded broker, scratch space
 * kafka: ""                      # bootstrap servers; empty = embedded single-node broker
 * qmpDir: /run/tidemark/qmp      # one &lt;vm&gt;.qmp socket per VM on this host
 * hypervisor:                    # how VMs are reached; absent = QMP sockets in qmpDir
 *   type: libvirt                # qmp (default) | libvirt
 *   uri: qemu:///system          # libvirt only: the connection URI
 * policies: /etc/tidemark/policies
 * metrics: 127.0.0.1:9464        # Prometheus /metrics; empty = off
 * hooks:                         # pre-deploy hook endpoint; absent = on only if TIDEMARK_HOOK_SECRET is set
 *   address: 127.0.0.1:9465      # empty = off
 *   secretFile: /etc/tidemark/hook.secret      # or secretEnv (default TIDEMARK_HOOK_SECRET)
 * maxConcurrentJobs: 2           # snapshot jobs of this host at once (jobs of one VM never overlap)
 * jobDeadline: 30m               # longest one snapshot job may run; then it is cancelled (JobFailed)
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
        String kafka,
        Path qmpDir,
        Path policies,
        Map<String, TargetConfig> targets,
        String metrics,
        HooksConfig hooks,
        HypervisorConfig hypervisor,
        EncryptionConfig encryption,
        Integer maxConcurrentJobs,
        String jobDeadline) {

    public EngineConfig {
        targets = targets == null ? Map.of() : Map.copyOf(targets);
        kafka = kafka == null ? "" : kafka;
        hypervisor = hypervisor == null ? HypervisorConfig.qmp() : hypervisor;
        if (maxConcurrentJobs != null && (maxConcurrentJobs < 1 || maxConcurrentJobs > MAX_CONCURRENT_JOBS)) {
            throw new PermanentException("maxConcurrentJobs must be from 1 to " + MAX_CONCURRENT_JOBS + " (default "
                    + DEFAULT_CONCURRENT_JOBS + "), got " + maxConcurrentJobs);
        }
        if (jobDeadline != null) {
            Duration d = Targets.duration("jobDeadline", jobDeadline);
            if (d.compareTo(MIN_JOB_DEADLINE) < 0) {
                throw new PermanentException("jobDeadline must be at least " + MIN_JOB_DEADLINE.toSeconds()
                        + "s (default " + JobBounds.DEFAULT_DEADLINE.toMinutes() + "m), got " + jobDeadline);
            }
        }
    }

    /** Without {@code jobDeadline} (the default deadline). */
    public EngineConfig(
            String host,
            Path data,
            String kafka,
            Path qmpDir,
            Path policies,
            Map<String, TargetConfig> targets,
            String metrics,
            HooksConfig hooks,
            HypervisorConfig hypervisor,
            EncryptionConfig encryption,
            Integer maxConcurrentJobs) {
        this(
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
                null);
    }

    /** Without {@code hypervisor:} (QMP sockets in {@code qmpDir}) and {@code encryption:} sections. */
    public EngineConfig(
            String host,
            Path data,
            String kafka,
            Path qmpDir,
            Path policies,
            Map<String, TargetConfig> targets,
            String metrics,
            HooksConfig hooks) {
        this(host, data, kafka, qmpDir, policies, targets, metrics, hooks, null, null, null, null);
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

    /** The shortest {@code jobDeadline} accepted. */
    public static final Duration MIN_JOB_DEADLINE = Duration.ofSeconds(1);

    /** How long one snapshot job may run before it is cancelled: {@code jobDeadline}, default 30 min. */
    public Duration jobDeadlineOrDefault() {
        return jobDeadline != null ? Targets.duration("jobDeadline", jobDeadline) : JobBounds.DEFAULT_DEADLINE;
    }

    /** The longest one snapshot job may run, as {@code 30s}, {@code 10m} or {@code 1h}; null = the default. */
    public EngineConfig withJobDeadline(String jobDeadline) {
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
                jobDeadline);
    }

    /** Embedded defaults: everything unset (the caller fills in what it needs). */
    public static EngineConfig empty() {
        return new EngineConfig(null, null, "", null, null, null, null, null, null, null, null, null);
    }

    /** One replication target. */
    public record TargetConfig(
            String type,
            String endpoint,
            String region,
            String bucket,
            String prefix,
            Boolean pathStyle,
            Boolean ossCompatible,
            String storageClass,
            String accessKeyEnv,
            String accessKeyFile,
            String secretKeyEnv,
            String secretKeyFile,
            Path path,
            String retryDeadline,
            String bandwidthLimit,
            String pool,
            String monHost,
            Path confFile,
            String clientName,
            String keyEnv,
            String keyFile,
            String objectLockMode,
            Integer objectLockDays) {

        /** An S3 (or OSS, RGW, S3Proxy) target; the keys are read from the named variables or files. */
        public static TargetConfig s3(
                String endpoint,
                String region,
                String bucket,
                String prefix,
                boolean pathStyle,
                boolean ossCompatible,
                String accessKeyEnv,
                String accessKeyFile,
                String secretKeyEnv,
                String secretKeyFile) {
            return new TargetConfig(
                    "s3",
                    endpoint,
                    region,
                    bucket,
                    prefix,
                    pathStyle,
                    ossCompatible,
                    null,
                    accessKeyEnv,
                    accessKeyFile,
                    secretKeyEnv,
                    secretKeyFile,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null);
        }

        /** A file-system target (a local disk or an NFS mount). */
        public static TargetConfig file(Path path, String retryDeadline, String bandwidthLimit) {
            return new TargetConfig(
                    "file",
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    path,
                    retryDeadline,
                    bandwidthLimit,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null,
                    null);
        }
    }

    private static final ObjectMapper YAML =
            new ObjectMapper(new YAMLFactory()).enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    public static EngineConfig load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new PermanentException("engine config " + file + " does not exist; pass --config with a readable"
                    + " file (see docs/configuration.md) or leave it out to run on embedded defaults");
        }
        try {
            return YAML.readValue(file.toFile(), EngineConfig.class);
        } catch (IOException e) {
            throw new PermanentException(
                    file + ": " + e.getMessage().lines().findFirst().orElse("unreadable"), e);
        }
    }

    public EngineConfig with(String host, Path data, String kafka, Path qmpDir, Path policies) {
        return new EngineConfig(
                host != null ? host : this.host,
                data != null ? data : this.data,
                kafka != null ? kafka : this.kafka,
                qmpDir != null ? qmpDir : this.qmpDir,
                policies != null ? policies : this.policies,
                targets,
                metrics,
                hooks,
                hypervisor,
                encryption,
                maxConcurrentJobs,
                jobDeadline);
    }

    public EngineConfig withTargets(Map<String, TargetConfig> targets) {
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
                jobDeadline);
    }

    /** How this host's VMs are reached; null = QMP sockets in {@code qmpDir}. */
    public EngineConfig withHypervisor(HypervisorConfig hypervisor) {
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
                jobDeadline);
    }

    /** The metrics address ({@code host:port}); blank turns the endpoint off. */
    public EngineConfig withMetrics(String metrics) {
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
                jobDeadline);
    }

    /** The encryption settings; null = passphrase from {@value EncryptionConfig#DEFAULT_PASSPHRASE_ENV} only. */
    public EngineConfig withEncryption(EncryptionConfig encryption) {
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
                jobDeadline);
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

    /** The pre-deploy hook endpoint; null turns it off. */
    public EngineConfig withHooks(HooksConfig hooks) {
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
                jobDeadline);
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
}
