package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.Secret;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bus against real brokers secured as in production: SASL/SCRAM over TLS on a KRaft broker,
 * and the replication factor checked against the brokers a cluster has.
 */
class KafkaSecurityIT {

    private static final String PASSWORD = "scram-pw-7f3a";

    @TempDir
    static Path dir;

    static SecureKafka secure;

    @BeforeAll
    static void start() throws Exception {
        secure = SecureKafka.start(dir.resolve("secure"), PASSWORD);
    }

    @AfterAll
    static void stop() {
        if (secure != null) {
            secure.close();
        }
    }

    private static KafkaEventBus bus(KafkaSecurity security) {
        return new KafkaEventBus(
                new KafkaSettings(secure.bootstrapServers(), 1, 1, security),
                SubscriptionSettings.DEFAULT,
                Clock.systemUTC());
    }

    @Test
    void scramOverTlsPublishesAndDelivers() {
        KafkaSecurity scram = new KafkaSecurity.Scram(
                SecureKafka.MECHANISM, SecureKafka.USER, Secret.of(PASSWORD, "test"), Optional.of(secure.tls()));
        try (KafkaEventBus bus = bus(scram)) {
            bus.checkReachable(Duration.ofSeconds(30));
            Event sent = Event.of("secure-1", Instant.now(), new JobFailed("vm", "capture", "x", false));
            bus.publish("t.secure", "vm", sent);
            List<Event> got = new CopyOnWriteArrayList<>();
            try (EventBus.Subscription s = bus.subscribe("g.secure", List.of("t.secure"), (t, e) -> got.add(e))) {
                Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> !got.isEmpty());
            }
            assertThat(got).extracting(Event::jobId).containsExactly("secure-1");
        }
    }

    @Test
    void aTrustStoreWithoutTheBrokersCertificateIsATlsErrorThatSaysSo() {
        KafkaSecurity scram = new KafkaSecurity.Scram(
                SecureKafka.MECHANISM, SecureKafka.USER, Secret.of(PASSWORD, "test"), Optional.of(secure.wrongTls()));
        try (KafkaEventBus bus = bus(scram)) {
            assertThatThrownBy(() -> bus.checkReachable(Duration.ofSeconds(30)))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("TLS handshake with Kafka at " + secure.bootstrapServers())
                    .hasMessageContaining("truststore");
        }
    }

    @Test
    void aWrongPasswordIsRefusedCredentialsAndTheMessageHoldsNoPassword() {
        String wrong = "not-the-password-91";
        KafkaSecurity scram = new KafkaSecurity.Scram(
                SecureKafka.MECHANISM, SecureKafka.USER, Secret.of(wrong, "test"), Optional.of(secure.tls()));
        try (KafkaEventBus bus = bus(scram)) {
            assertThatThrownBy(() -> bus.checkReachable(Duration.ofSeconds(30)))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("refused the credentials")
                    .hasMessageContaining("as " + SecureKafka.USER)
                    .satisfies(e ->
                            assertThat(e.getMessage()).doesNotContain(wrong).doesNotContain(PASSWORD));
        }
    }

    @Test
    void aReplicationFactorAboveTheBrokerCountIsAClearErrorAtStart() {
        try (EmbeddedKafka single = EmbeddedKafka.start(dir.resolve("single"), 0, 0);
                KafkaEventBus bus = new KafkaEventBus(
                        new KafkaSettings(single.bootstrapServers(), 3, 2, new KafkaSecurity.Plaintext()),
                        SubscriptionSettings.DEFAULT,
                        Clock.systemUTC())) {
            assertThatThrownBy(() -> bus.checkReachable(Duration.ofSeconds(30)))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("Kafka at " + single.bootstrapServers() + " has 1 broker")
                    .hasMessageContaining("replication factor 3");
            // and a topic asked for anyway is refused for good, not retried for a minute
            assertThatThrownBy(() -> bus.ensureTopics(List.of("t.rf3")))
                    .isInstanceOf(PermanentException.class)
                    .hasMessageContaining("cannot give replication factor 3");
        }
    }
}
