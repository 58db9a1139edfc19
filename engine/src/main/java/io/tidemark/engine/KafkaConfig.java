package io.tidemark.engine;

import com.fasterxml.jackson.annotation.JsonCreator;
import io.tidemark.core.InvalidInputException;
import io.tidemark.core.Secret;
import io.tidemark.kafka.KafkaSecurity;
import io.tidemark.kafka.KafkaSettings;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The engine config's {@code kafka:}: either the bootstrap servers alone ({@code kafka: k1:9092}; empty
 * = the embedded broker) or a mapping with the replication of the topics the engine creates and the
 * clients' security. Passwords come from files or the environment, never from this file.
 *
 * <pre>
 * kafka:
 *   bootstrap: k1:9093,k2:9093,k3:9093
 *   replicationFactor: 3          # default 1 (a single broker)
 *   minInsyncReplicas: 2          # default: replicationFactor - 1, at least 1
 *   tls:
 *     truststore: /etc/tidemark/kafka-ca.p12
 *     truststorePasswordFile: /etc/tidemark/kafka-ca.pass    # or truststorePasswordEnv; none for a PEM-less PKCS12 without one
 *     keystore: /etc/tidemark/kafka-client.p12              # mutual TLS only
 *     keystorePasswordFile: /etc/tidemark/kafka-client.pass  # or keystorePasswordEnv
 *   sasl:
 *     mechanism: SCRAM-SHA-512    # or SCRAM-SHA-256
 *     username: tidemark
 *     passwordFile: /etc/tidemark/kafka.pass                 # or passwordEnv (default TIDEMARK_KAFKA_PASSWORD)
 * </pre>
 */
public record KafkaConfig(
        String bootstrap, Integer replicationFactor, Integer minInsyncReplicas, TlsConfig tls, SaslConfig sasl) {

    /** Where the SASL password is read from when neither {@code passwordFile} nor {@code passwordEnv} is set. */
    public static final String DEFAULT_PASSWORD_ENV = "TIDEMARK_KAFKA_PASSWORD";

    public KafkaConfig {
        bootstrap = bootstrap == null ? "" : bootstrap.strip();
        if (bootstrap.isEmpty()
                && (replicationFactor != null || minInsyncReplicas != null || tls != null || sasl != null)) {
            throw new InvalidInputException(
                    "kafka.bootstrap is empty (the embedded broker), so replicationFactor,"
                            + " minInsyncReplicas, tls and sasl have nothing to apply to; give the cluster's bootstrap servers");
        }
        if (replicationFactor != null && replicationFactor < 1) {
            throw new InvalidInputException("kafka.replicationFactor must be at least 1, not " + replicationFactor);
        }
        int rf = replicationFactor == null ? 1 : replicationFactor;
        if (minInsyncReplicas != null && (minInsyncReplicas < 1 || minInsyncReplicas > rf)) {
            throw new InvalidInputException("kafka.minInsyncReplicas must be from 1 to the replication factor (" + rf
                    + "), not " + minInsyncReplicas);
        }
    }

    /** {@code kafka: host:port,...} — the bootstrap servers alone. */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static KafkaConfig of(String bootstrap) {
        return new KafkaConfig(bootstrap, null, null, null, null);
    }

    /** The embedded single-node broker. */
    public static KafkaConfig embedded() {
        return of("");
    }

    /** True when the engine starts its own broker. */
    public boolean isEmbedded() {
        return bootstrap.isEmpty();
    }

    /** The replication factor of the topics the engine creates (default 1). */
    public int replicationFactorOrDefault() {
        return replicationFactor == null ? 1 : replicationFactor;
    }

    /** {@code min.insync.replicas} of those topics (default: one less than the replication factor, at least 1). */
    public int minInsyncReplicasOrDefault() {
        return minInsyncReplicas != null ? minInsyncReplicas : Math.max(1, replicationFactorOrDefault() - 1);
    }

    /**
     * The client settings, secrets read now from their files or {@code env}.
     *
     * @param bootstrapServers the servers to use (the embedded broker's when this config names none)
     */
    public KafkaSettings settings(String bootstrapServers, Map<String, String> env) {
        Optional<KafkaSecurity.Tls> t = Optional.ofNullable(tls).map(c -> c.security(env));
        KafkaSecurity security = sasl != null
                ? sasl.security(t, env)
                : t.<KafkaSecurity>map(x -> x).orElseGet(KafkaSecurity.Plaintext::new);
        return new KafkaSettings(
                bootstrapServers, replicationFactorOrDefault(), minInsyncReplicasOrDefault(), security);
    }

    /** TLS to the brokers: their CA in {@code truststore}; {@code keystore} only for mutual TLS. */
    public record TlsConfig(
            Path truststore,
            Path truststorePasswordFile,
            String truststorePasswordEnv,
            Path keystore,
            Path keystorePasswordFile,
            String keystorePasswordEnv) {

        public TlsConfig {
            if (truststore == null) {
                throw new InvalidInputException("kafka.tls.truststore is required: the file with the CA of the"
                        + " brokers' certificates (PKCS12, or JKS by its .jks extension)");
            }
            if (keystore == null && (keystorePasswordFile != null || keystorePasswordEnv != null)) {
                throw new InvalidInputException("kafka.tls: a keystore password is given but no keystore");
            }
        }

        KafkaSecurity.Tls security(Map<String, String> env) {
            Secret trustPassword = truststorePasswordFile != null || truststorePasswordEnv != null
                    ? Secret.load(
                            "the Kafka trust store's password", truststorePasswordFile, truststorePasswordEnv, env)
                    : null;
            Optional<KafkaSecurity.KeyStore> client = keystore == null
                    ? Optional.empty()
                    : Optional.of(new KafkaSecurity.KeyStore(
                            keystore,
                            Secret.load(
                                    "the Kafka key store's password", keystorePasswordFile, keystorePasswordEnv, env)));
            return new KafkaSecurity.Tls(truststore, trustPassword, client);
        }
    }

    /** SASL/SCRAM: a user name here, its password from a file or the environment. */
    public record SaslConfig(String mechanism, String username, Path passwordFile, String passwordEnv) {

        public SaslConfig {
            mechanism = mechanism == null ? "SCRAM-SHA-512" : mechanism;
            if (!mechanism.equals("SCRAM-SHA-256") && !mechanism.equals("SCRAM-SHA-512")) {
                throw new InvalidInputException(
                        "kafka.sasl.mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, not " + mechanism);
            }
            if (username == null || username.isBlank()) {
                throw new InvalidInputException("kafka.sasl.username is required");
            }
        }

        KafkaSecurity security(Optional<KafkaSecurity.Tls> tls, Map<String, String> env) {
            Secret password = Secret.load(
                    "the Kafka SASL password",
                    passwordFile,
                    passwordFile == null && passwordEnv == null ? DEFAULT_PASSWORD_ENV : passwordEnv,
                    env);
            return new KafkaSecurity.Scram(mechanism, username, password, tls);
        }
    }
}
