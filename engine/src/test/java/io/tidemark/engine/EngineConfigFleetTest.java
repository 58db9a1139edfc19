package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.InvalidInputException;
import io.tidemark.kafka.KafkaSecurity;
import io.tidemark.kafka.KafkaSettings;
import io.tidemark.scheduler.QuartzJdbc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fleet settings of the engine config: roles, the Kafka cluster, the scheduler's shared store. */
class EngineConfigFleetTest {

    @TempDir
    Path dir;

    private Path config(String yaml) throws Exception {
        return Files.writeString(dir.resolve("tidemark.yaml"), yaml);
    }

    @Test
    void aKafkaClusterWithTlsAndScramBecomesTheClientsSettingsWithPasswordsFromFiles() throws Exception {
        Path pass = Files.writeString(dir.resolve("kafka.pass"), "s3cr3t\n");
        Path c = config(
                """
                kafka:
                  bootstrap: k1:9093,k2:9093,k3:9093
                  replicationFactor: 3
                  tls:
                    truststore: /etc/tidemark/kafka-ca.p12
                  sasl:
                    username: tidemark
                    passwordFile: %s
                """
                        .formatted(pass));
        EngineConfig config = EngineConfig.load(c);
        KafkaSettings s = config.kafka().settings(config.kafka().bootstrap(), Map.of());
        assertThat(s.bootstrapServers()).isEqualTo("k1:9093,k2:9093,k3:9093");
        assertThat(s.replicationFactor()).isEqualTo(3);
        assertThat(s.minInsyncReplicas())
                .as("default: one less than the replicas")
                .isEqualTo(2);
        assertThat(s.security()).isInstanceOfSatisfying(KafkaSecurity.Scram.class, scram -> {
            assertThat(scram.mechanism()).isEqualTo("SCRAM-SHA-512");
            assertThat(scram.username()).isEqualTo("tidemark");
            assertThat(scram.password().reveal()).isEqualTo("s3cr3t");
            assertThat(scram.tls()).isPresent();
        });
        assertThat(s.toString()).doesNotContain("s3cr3t");
    }

    @Test
    void kafkaAsAStringIsTheBootstrapServersAndEmptyIsTheEmbeddedBroker() throws Exception {
        assertThat(EngineConfig.load(config("kafka: k1:9092\n")).kafka())
                .satisfies(k -> assertThat(k.bootstrap()).isEqualTo("k1:9092"))
                .satisfies(k -> assertThat(k.isEmbedded()).isFalse())
                .satisfies(k -> assertThat(k.settings("k1:9092", Map.of()).security())
                        .isInstanceOf(KafkaSecurity.Plaintext.class));
        assertThat(EngineConfig.load(config("host: h\n")).kafka().isEmbedded()).isTrue();
    }

    @Test
    void aMinInsyncAboveTheReplicasIsReportedAtItsKey() throws Exception {
        Path c = config("kafka:\n  bootstrap: k1:9092\n  replicationFactor: 2\n  minInsyncReplicas: 3\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(c + ":")
                .hasMessageContaining("kafka")
                .hasMessageContaining("minInsyncReplicas must be from 1 to the replication factor (2), not 3");
    }

    @Test
    void aMissingSaslPasswordSaysWhereItWasLookedFor() throws Exception {
        EngineConfig config =
                EngineConfig.load(config("kafka:\n  bootstrap: k1:9092\n  sasl:\n    username: tidemark\n"));
        assertThatThrownBy(() -> config.kafka().settings("k1:9092", Map.of()))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(KafkaConfig.DEFAULT_PASSWORD_ENV);
    }

    @Test
    void rolesAreNamedAndAnUnknownOneListsTheKnownOnes() throws Exception {
        assertThat(EngineConfig.load(config("roles: [worker, replicator]\n")).roleSet())
                .isEqualTo(EnumSet.of(Role.WORKER, Role.REPLICATOR));
        assertThat(EngineConfig.load(config("host: h\n")).roleSet()).isEqualTo(EnumSet.allOf(Role.class));
        Path c = config("roles: [worker, schedular]\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(c + ":1:")
                .hasMessageContaining("unknown role 'schedular': expected scheduler, worker, replicator or all");
    }

    @Test
    void theSchedulersSharedStoreTakesItsPasswordFromAFileAndItsTimingAsDurations() throws Exception {
        Path pass = Files.writeString(dir.resolve("pg.pass"), "pg-secret\n");
        Path c = config(
                """
                scheduler:
                  jdbc:
                    url: jdbc:postgresql://db1:5432/tidemark
                    user: tidemark
                    passwordFile: %s
                    checkinInterval: 2s
                """
                        .formatted(pass));
        QuartzJdbc q = EngineConfig.load(c).scheduler().jdbc().quartz(Map.of());
        assertThat(q.jdbcUrl()).isEqualTo("jdbc:postgresql://db1:5432/tidemark");
        assertThat(q.password()).isEqualTo("pg-secret");
        assertThat(q.clusterName()).isEqualTo("tidemark");
        assertThat(q.checkinInterval()).isEqualTo(Duration.ofSeconds(2));
        assertThat(q.toString()).doesNotContain("pg-secret");

        Path bad = config("scheduler:\n  jdbc:\n    url: jdbc:mysql://db1/x\n    user: u\n");
        assertThatThrownBy(() -> EngineConfig.load(bad))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("scheduler.jdbc.url must be a PostgreSQL JDBC URL");
    }
}
