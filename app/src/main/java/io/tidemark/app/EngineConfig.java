package io.tidemark.app;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

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
 * policies: /etc/tidemark/policies
 * metrics: 127.0.0.1:9464        # Prometheus /metrics; empty = off
 * targets:
 *   offsite:
 *     type: s3                   # s3 | file
 *     endpoint: https://s3.eu-west-1.amazonaws.com
 *     region: eu-west-1
 *     bucket: backups
 *     prefix: tidemark
 *     accessKeyEnv: TIDEMARK_S3_ACCESS_KEY     # or accessKeyFile
 *     secretKeyFile: /etc/tidemark/s3.secret   # or secretKeyEnv
 * </pre>
 */
public record EngineConfig(
        String host,
        Path data,
        String kafka,
        Path qmpDir,
        Path policies,
        Map<String, TargetConfig> targets,
        String metrics) {

    public EngineConfig {
        targets = targets == null ? Map.of() : Map.copyOf(targets);
        kafka = kafka == null ? "" : kafka;
    }

    /** Embedded defaults: everything unset (the caller fills in what it needs). */
    public static EngineConfig empty() {
        return new EngineConfig(null, null, "", null, null, null, null);
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
            Path path) {}

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
                metrics);
    }

    public EngineConfig withTargets(Map<String, TargetConfig> targets) {
        return new EngineConfig(host, data, kafka, qmpDir, policies, targets, metrics);
    }

    /** The metrics address ({@code host:port}); blank turns the endpoint off. */
    public EngineConfig withMetrics(String metrics) {
        return new EngineConfig(host, data, kafka, qmpDir, policies, targets, metrics);
    }
}
