package io.tidemark.kafka;

import io.tidemark.core.Secret;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * How the engine's Kafka clients authenticate: nothing (a broker on loopback, the embedded one), TLS
 * (the broker's certificate checked against a trust store, optionally a client certificate), or
 * SASL/SCRAM (over TLS in production). Passwords are {@link Secret}s, read from files or the
 * environment.
 */
public sealed interface KafkaSecurity {

    /** The client properties for this security setting (secrets included: never log them). */
    Map<String, Object> clientProperties();

    /** What is used, without secrets, for logs and errors ("SASL SCRAM-SHA-512 as tidemark over TLS"). */
    String describe();

    /** No TLS, no authentication. */
    record Plaintext() implements KafkaSecurity {
        @Override
        public Map<String, Object> clientProperties() {
            return Map.of("security.protocol", "PLAINTEXT");
        }

        @Override
        public String describe() {
            return "plaintext";
        }
    }

    /**
     * TLS: the brokers' certificates are checked against {@code truststore}; {@code clientKey} holds
     * this client's own certificate when the brokers ask for one (mutual TLS).
     */
    record Tls(Path truststore, Secret truststorePassword, Optional<KeyStore> clientKey) implements KafkaSecurity {

        public Tls {
            if (truststore == null) {
                throw new IllegalArgumentException("TLS needs a trust store");
            }
            clientKey = clientKey == null ? Optional.empty() : clientKey;
        }

        @Override
        public Map<String, Object> clientProperties() {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("security.protocol", "SSL");
            p.putAll(sslProperties());
            return p;
        }

        Map<String, Object> sslProperties() {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("ssl.truststore.location", truststore.toString());
            p.put("ssl.truststore.type", KeyStore.typeOf(truststore));
            if (truststorePassword != null) {
                p.put("ssl.truststore.password", truststorePassword.reveal());
            }
            clientKey.ifPresent(k -> {
                p.put("ssl.keystore.location", k.path().toString());
                p.put("ssl.keystore.type", KeyStore.typeOf(k.path()));
                p.put("ssl.keystore.password", k.password().reveal());
            });
            return p;
        }

        @Override
        public String describe() {
            return "TLS (trust store " + truststore
                    + clientKey.map(k -> ", client key " + k.path()).orElse("") + ")";
        }
    }

    /** A key store file (PKCS12, or JKS by its .jks extension) and its password. */
    record KeyStore(Path path, Secret password) {
        static String typeOf(Path p) {
            return p.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".jks") ? "JKS" : "PKCS12";
        }
    }

    /** SASL/SCRAM with a user name and a password, over {@code tls} when given (SASL_SSL). */
    record Scram(String mechanism, String username, Secret password, Optional<Tls> tls) implements KafkaSecurity {

        public Scram {
            if (!mechanism.equals("SCRAM-SHA-256") && !mechanism.equals("SCRAM-SHA-512")) {
                throw new IllegalArgumentException(
                        "SASL mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, not " + mechanism);
            }
            if (username == null || username.isBlank()) {
                throw new IllegalArgumentException("SASL/SCRAM needs a user name");
            }
            tls = tls == null ? Optional.empty() : tls;
        }

        @Override
        public Map<String, Object> clientProperties() {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("security.protocol", tls.isPresent() ? "SASL_SSL" : "SASL_PLAINTEXT");
            tls.ifPresent(t -> p.putAll(t.sslProperties()));
            p.put("sasl.mechanism", mechanism);
            p.put(
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + quote(username)
                            + "\" password=\"" + quote(password.reveal()) + "\";");
            return p;
        }

        private static String quote(String s) {
            return s.replace("\\", "\\\\").replace("\"", "\\\"");
        }

        @Override
        public String describe() {
            return "SASL " + mechanism + " as " + username
                    + tls.map(t -> " over " + t.describe()).orElse(" without TLS");
        }
    }
}
