package io.tidemark.testkit.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.kafka.KafkaSecurity;
import io.tidemark.kafka.KafkaSettings;
import io.tidemark.kafka.SubscriptionSettings;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bus on a three-broker cluster, as in production: replicated topics, a broker killed and back
 * (here, beside the cluster fixture, because the Kafka module's tests cannot depend on the test kit).
 */
class KafkaClusterIT {

    @TempDir
    Path dir;

    @Test
    void topicsAreReplicatedAndTheBusKeepsDeliveringWhileABrokerIsKilled() throws Exception {
        try (LocalKafkaCluster cluster = LocalKafkaCluster.start(dir, 3);
                KafkaEventBus bus = new KafkaEventBus(
                        new KafkaSettings(cluster.bootstrapServers(), 3, 2, new KafkaSecurity.Plaintext()),
                        SubscriptionSettings.DEFAULT,
                        Clock.systemUTC())) {
            bus.checkReachable(Duration.ofSeconds(60));
            bus.ensurePartitions("t.fleet", 2);
            try (Admin admin = Admin.create(java.util.Map.of("bootstrap.servers", cluster.bootstrapServers()))) {
                TopicDescription d = admin.describeTopics(List.of("t.fleet"))
                        .allTopicNames()
                        .get()
                        .get("t.fleet");
                assertThat(d.partitions()).hasSize(2).allSatisfy(p -> assertThat(p.replicas())
                        .hasSize(3));
                ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, "t.fleet");
                assertThat(admin.describeConfigs(List.of(r))
                                .all()
                                .get()
                                .get(r)
                                .get("min.insync.replicas")
                                .value())
                        .isEqualTo("2");
            }
            Set<String> got = ConcurrentHashMap.newKeySet();
            try (EventBus.Subscription s = bus.subscribe("g.fleet", List.of("t.fleet"), (t, e) -> got.add(e.jobId()))) {
                for (int i = 0; i < 5; i++) {
                    bus.publish("t.fleet", "vm-" + i, event("before-" + i));
                }
                cluster.kill(0);
                for (int i = 0; i < 5; i++) { // acks=all with 2 of 3 replicas in sync: still accepted
                    bus.publish("t.fleet", "vm-" + i, event("during-" + i));
                }
                cluster.restart(0);
                for (int i = 0; i < 5; i++) {
                    bus.publish("t.fleet", "vm-" + i, event("after-" + i));
                }
                await().atMost(Duration.ofMinutes(3)).until(() -> got.size() == 15);
            }
            assertThat(got).contains("before-0", "during-4", "after-2").hasSize(15);
        }
    }

    private static Event event(String job) {
        return Event.of(job, Instant.now(), new JobFailed("vm", "capture", "x", false));
    }
}
