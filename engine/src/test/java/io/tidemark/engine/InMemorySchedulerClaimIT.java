package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.testkit.postgres.PostgresCluster;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two schedulers with their state in memory on one bus would each fire every policy: the second is
 * refused at start-up, before it fires, with what to configure; once the first has stopped, a
 * scheduler starts again on the same bus. Neither kind, in memory or a Quartz cluster on
 * PostgreSQL, starts beside the other. Real embedded Kafka and PostgreSQL.
 */
class InMemorySchedulerClaimIT {

    @TempDir
    Path dir;

    @Test
    void aSecondInMemorySchedulerOnOneBusIsRefusedAndNamesSchedulerJdbc() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("p.yaml"),
                "name: hourly\nvms:\n  names: [vm1]\nschedule:\n  interval: 1h\nrpo: 2h\ntargets: []\n");
        try (EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0)) {
            EngineConfig first = scheduler(kafka, "s1");
            try (Engine running = Engine.start(first, CaptureHooks.NONE, Clock.systemUTC(), Duration.ofSeconds(3))) {
                assertThat(running.scheduler()).isNotNull();
                assertThatThrownBy(() -> Engine.start(
                                        scheduler(kafka, "s2"),
                                        CaptureHooks.NONE,
                                        Clock.systemUTC(),
                                        Duration.ofSeconds(3))
                                .close())
                        .isInstanceOf(PermanentException.class)
                        .hasMessageContaining("consumer group " + Engine.SCHEDULERS_IN_MEMORY)
                        .hasMessageContaining("another scheduler with its state in memory runs on this bus")
                        .hasMessageContaining("configure scheduler.jdbc");
            }
            // the first left its group when it stopped: a scheduler (a restart) starts again
            try (Engine again = Engine.start(
                    scheduler(kafka, "s2"), CaptureHooks.NONE, Clock.systemUTC(), Duration.ofSeconds(30))) {
                assertThat(again.scheduler()).isNotNull();
            }
        }
    }

    @Test
    void inMemoryAndClusteredSchedulersRefuseToRunBesideEachOther() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("p.yaml"),
                "name: hourly\nvms:\n  names: [vm1]\nschedule:\n  interval: 1h\nrpo: 2h\ntargets: []\n");
        try (PostgresCluster postgres = PostgresCluster.start("scheduler");
                EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0)) {
            EngineConfig clustered = scheduler(kafka, "c1").toBuilder()
                    .scheduler(new SchedulerConfig(new SchedulerConfig.JdbcConfig(
                            postgres.jdbcUrl(), PostgresCluster.USER, null, null, null, "1s", null)))
                    .build();
            try (Engine inMemory =
                    Engine.start(scheduler(kafka, "m1"), CaptureHooks.NONE, Clock.systemUTC(), Duration.ofSeconds(3))) {
                assertThat(inMemory.scheduler()).isNotNull();
                assertThatThrownBy(() -> Engine.start(
                                        clustered, CaptureHooks.NONE, Clock.systemUTC(), Duration.ofSeconds(3))
                                .close())
                        .isInstanceOf(PermanentException.class)
                        .hasMessageContaining(
                                "a scheduler with its state in memory (no scheduler.jdbc) runs on this bus")
                        .hasMessageContaining("configure scheduler.jdbc");
            }
            try (Engine cluster =
                    Engine.start(clustered, CaptureHooks.NONE, Clock.systemUTC(), Duration.ofSeconds(30))) {
                assertThat(cluster.scheduler()).isNotNull();
                assertThatThrownBy(() -> Engine.start(
                                        scheduler(kafka, "m2"),
                                        CaptureHooks.NONE,
                                        Clock.systemUTC(),
                                        Duration.ofSeconds(3))
                                .close())
                        .isInstanceOf(PermanentException.class)
                        .hasMessageContaining("consumer group " + Engine.SCHEDULERS_CLUSTERED)
                        .hasMessageContaining("schedulers of a Quartz cluster (scheduler.jdbc) run on this bus");
            }
        }
    }

    private EngineConfig scheduler(EmbeddedKafka kafka, String host) {
        return EngineConfig.builder()
                .host(host)
                .data(dir.resolve(host))
                .kafka(kafka.bootstrapServers())
                .policies(dir.resolve("policies"))
                .qmpDir(dir.resolve("qmp"))
                .metrics("")
                .roles(List.of("scheduler"))
                .build();
    }
}
