package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.Secret;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KafkaSettingsTest {

    @TempDir
    Path dir;

    @Test
    void scramOverTlsGivesTheClientItsPropertiesAndNothingElseShowsThePassword() {
        KafkaSecurity.Tls tls = new KafkaSecurity.Tls(
                Path.of("/etc/tidemark/kafka-ca.p12"), Secret.of("trust-pw", "test"), Optional.empty());
        KafkaSettings s = new KafkaSettings(
                "k1:9093,k2:9093",
                3,
                2,
                new KafkaSecurity.Scram("SCRAM-SHA-512", "tidemark", Secret.of("p\"w\\1", "test"), Optional.of(tls)));

        Map<String, Object> p = s.clientProperties();
        assertThat(p)
                .containsEntry("bootstrap.servers", "k1:9093,k2:9093")
                .containsEntry("security.protocol", "SASL_SSL")
                .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
                .containsEntry("ssl.truststore.location", "/etc/tidemark/kafka-ca.p12")
                .containsEntry("ssl.truststore.type", "PKCS12")
                .containsEntry("ssl.truststore.password", "trust-pw")
                .containsEntry(
                        "sasl.jaas.config",
                        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"tidemark\""
                                + " password=\"p\\\"w\\\\1\";");
        assertThat(s.topicConfigs()).containsExactly(Map.entry("min.insync.replicas", "2"));
        assertThat(s.toString() + s.describe())
                .contains("k1:9093,k2:9093", "SCRAM-SHA-512", "tidemark", "replicationFactor=3")
                .doesNotContain("p\"w")
                .doesNotContain("trust-pw");
    }

    @Test
    void settingsThatCannotWorkAreRefusedWithTheKeyToFix() {
        assertThatThrownBy(() -> new KafkaSettings("k:9092", 1, 2, null))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("kafka.minInsyncReplicas")
                .hasMessageContaining("(1)");
        assertThatThrownBy(() -> new KafkaSettings("k:9092", 0, 1, null))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("kafka.replicationFactor");
        assertThatThrownBy(() -> new KafkaSettings(" ", 1, 1, null)).isInstanceOf(InvalidInputException.class);
        assertThatThrownBy(() -> new KafkaSecurity.Scram("PLAIN", "u", Secret.of("x", "t"), Optional.empty()))
                .hasMessageContaining("SCRAM-SHA-256 or SCRAM-SHA-512");
    }

    @Test
    void aSecretComesFromItsFileOrElseTheEnvironmentAndSaysWhereItLooked() throws Exception {
        Path file = Files.writeString(dir.resolve("kafka.pass"), "from-file\n");
        Secret fromFile = Secret.load("the SASL password", file, "TM_KAFKA_PW", Map.of("TM_KAFKA_PW", "from-env"));
        assertThat(fromFile.reveal()).isEqualTo("from-file");
        assertThat(fromFile.toString()).isEqualTo("<secret from file " + file + ">");

        Secret fromEnv = Secret.load("the SASL password", null, "TM_KAFKA_PW", Map.of("TM_KAFKA_PW", "from-env"));
        assertThat(fromEnv.reveal()).isEqualTo("from-env");
        assertThat(fromEnv.toString()).doesNotContain("from-env");

        assertThatThrownBy(() -> Secret.load("the SASL password", null, "TM_KAFKA_PW", Map.of()))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("the SASL password is not set")
                .hasMessageContaining("TM_KAFKA_PW");
        assertThatThrownBy(() -> Secret.load("the SASL password", dir.resolve("missing"), "X", Map.of()))
                .hasMessageContaining(dir.resolve("missing").toString());
    }
}
