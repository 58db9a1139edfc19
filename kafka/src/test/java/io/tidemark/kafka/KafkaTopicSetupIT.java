package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Topics are usable as soon as the bus says they exist, even on a broker that has just started. */
class KafkaTopicSetupIT {

    @TempDir
    Path dir;

    @Test
    void freshTopicsCanBeGrownAndWrittenAtOnceOnAJustStartedBroker() {
        try (EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers())) {
            // no pause anywhere: each call must wait for the broker's metadata itself
            for (int i = 0; i < 25; i++) {
                String jobs = "t.jobs.h" + i;
                bus.ensurePartitions(jobs, 2);
                bus.ensurePartitions(jobs, 4);
                String plain = "t.plain." + i;
                bus.ensureTopics(List.of(plain));
                bus.ensurePartitions(plain, 3);
                String compacted = "t.compacted." + i;
                bus.ensureCompactedTopic(compacted);
                for (String t : List.of(jobs, plain, compacted)) {
                    bus.publish(t, "vm-" + i, Event.of("j" + i, Instant.now(), new JobFailed("vm", "x", "y", false)));
                }
            }
            assertThat(bus.partitionsOf("t.jobs.h24")).isEqualTo(4);
            assertThat(bus.partitionsOf("t.plain.24")).isEqualTo(3);
        }
    }
}
