package io.tidemark.kafka;

import io.tidemark.core.InvalidInputException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How the engine reaches its Kafka cluster and what its topics must guarantee.
 *
 * @param bootstrapServers {@code host:port[,host:port...]}
 * @param replicationFactor copies of every partition of the topics the engine creates (3 in
 *     production; 1 for a single broker such as the embedded one); more than the cluster's brokers is
 *     an error at start
 * @param minInsyncReplicas copies that must acknowledge a write ({@code min.insync.replicas} of the
 *     topics; with {@code acks=all} a write fails rather than live on fewer): 1..replicationFactor
 * @param security how the clients authenticate
 */
public record KafkaSettings(
        String bootstrapServers, int replicationFactor, int minInsyncReplicas, KafkaSecurity security) {

    public KafkaSettings {
        if (bootstrapServers == null || bootstrapServers.isBlank()) {
            throw new InvalidInputException("kafka: the bootstrap servers are empty");
        }
        if (replicationFactor < 1 || replicationFactor > Short.MAX_VALUE) {
            throw new InvalidInputException("kafka.replicationFactor must be at least 1, not " + replicationFactor);
        }
        if (minInsyncReplicas < 1 || minInsyncReplicas > replicationFactor) {
            throw new InvalidInputException("kafka.minInsyncReplicas must be between 1 and the replication factor ("
                    + replicationFactor + "), not " + minInsyncReplicas);
        }
        security = security == null ? new KafkaSecurity.Plaintext() : security;
    }

    /** A single broker without TLS or authentication (the embedded broker, tests). */
    public static KafkaSettings plaintext(String bootstrapServers) {
        return new KafkaSettings(bootstrapServers, 1, 1, new KafkaSecurity.Plaintext());
    }

    /** Bootstrap servers plus the security properties, for producers, consumers and the admin client. */
    Map<String, Object> clientProperties() {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("bootstrap.servers", bootstrapServers);
        p.putAll(security.clientProperties());
        return p;
    }

    /** The topic configs every topic the engine creates carries. */
    Map<String, String> topicConfigs() {
        return Map.of("min.insync.replicas", String.valueOf(minInsyncReplicas));
    }

    /** Where and how, without secrets: "k1:9093,k2:9093 (SASL SCRAM-SHA-512 as tidemark over TLS ...)". */
    public String describe() {
        return bootstrapServers + " (" + security.describe() + ")";
    }

    @Override
    public String toString() {
        return "KafkaSettings[" + describe() + ", replicationFactor=" + replicationFactor + ", minInsyncReplicas="
                + minInsyncReplicas + "]";
    }
}
