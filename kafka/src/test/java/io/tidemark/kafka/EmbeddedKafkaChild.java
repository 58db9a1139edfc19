package io.tidemark.kafka;

import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * A broker in a JVM of its own, for {@link EmbeddedKafkaRestartIT} to kill: starts the embedded
 * broker on {@code args[0]}, publishes {@code args[2]} events to topic {@code args[1]}, has group
 * {@code args[1]}-group handle and commit them, prints {@code READY <bootstrap> <cluster id>} and
 * waits to be killed.
 */
public final class EmbeddedKafkaChild {

    private EmbeddedKafkaChild() {}

    public static void main(String[] args) throws InterruptedException {
        Path dir = Path.of(args[0]);
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        EmbeddedKafka kafka = EmbeddedKafka.start(dir, 0, 0);
        KafkaEventBus bus = new KafkaEventBus(kafka.bootstrapServers());
        for (int i = 0; i < count; i++) {
            bus.publish(topic, "vm", Event.of("job-" + i, Instant.now(), new JobFailed("vm", "capture", "x", false)));
        }
        EventBus.Subscription s = bus.subscribe(topic + "-group", List.of(topic), (t, e) -> {});
        BooleanSupplier done = bus.caughtUpCheck(topic + "-group", topic);
        await().atMost(Duration.ofMinutes(2)).until(done::getAsBoolean);
        System.out.println("READY " + kafka.bootstrapServers() + " " + kafka.clusterId());
        System.out.flush();
        Thread.currentThread().join(); // until killed
        s.close();
    }
}
