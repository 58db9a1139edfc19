package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.policies.Policy;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class SnapshotDispatcherTest {

    static final Instant NOW = Instant.parse("2026-12-07T06:00:00Z");

    /**
     * A log that acknowledges nothing until every job of the firing is in flight (as a batch of a
     * Kafka producer): a dispatcher that waits for each acknowledgement before the next publish
     * gets none.
     */
    static final class AcknowledgesOnlyABatch implements EventBus {
        final CountDownLatch issued;
        final List<CompletableFuture<Void>> pending = new ArrayList<>();
        final List<Event> published = new ArrayList<>();

        AcknowledgesOnlyABatch(int batch) {
            this.issued = new CountDownLatch(batch);
        }

        @Override
        public void publish(String topic, String key, Event event) {
            issued.countDown();
            try {
                if (!issued.await(200, TimeUnit.MILLISECONDS)) {
                    throw new RetriableException("no acknowledgement: the rest of the batch never came");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted", e);
            }
            synchronized (this) {
                published.add(event);
            }
        }

        @Override
        public synchronized CompletableFuture<Void> publishAsync(String topic, String key, Event event) {
            published.add(event);
            CompletableFuture<Void> f = new CompletableFuture<>();
            pending.add(f);
            issued.countDown();
            if (issued.getCount() == 0) {
                pending.forEach(p -> p.complete(null));
            }
            return f;
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }

    @Test
    @Timeout(30)
    void aFiringHasAllItsJobsInFlightAtOnceAndReportsEachOutcome() {
        InMemoryInventory inventory = new InMemoryInventory();
        for (int i = 0; i < 50; i++) {
            inventory.put("vm-" + i, "host-" + (i % 3), Map.of());
        }
        AcknowledgesOnlyABatch bus = new AcknowledgesOnlyABatch(50);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            names.add("vm-" + i);
        }
        Policy policy = Policy.of(
                "p",
                VmSelector.ofNames(names.toArray(String[]::new)),
                Schedule.Interval.every(Duration.ofMinutes(1)),
                Duration.ofHours(1),
                List.of());

        Firing firing = new SnapshotDispatcher(inventory, bus, Clock.fixed(NOW, ZoneOffset.UTC)).dispatch(policy, NOW);

        assertThat(firing.failedVms()).isEmpty();
        assertThat(firing.jobIds()).hasSize(50).doesNotHaveDuplicates();
        assertThat(bus.published).hasSize(50);
    }

    @Test
    void aJobTheLogRefusesFailsAloneAndTheOthersArePublished() {
        InMemoryInventory inventory =
                new InMemoryInventory().put("vm-a", "h", Map.of()).put("vm-b", "h", Map.of());
        EventBus bus = new EventBus() {
            @Override
            public void publish(String topic, String key, Event event) {
                if (key.equals("vm-a")) {
                    throw new RetriableException("broker down");
                }
            }

            @Override
            public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
                return () -> {};
            }

            @Override
            public void close() {}
        };
        Policy policy = Policy.of(
                "p",
                VmSelector.ofNames("vm-a", "vm-b"),
                Schedule.Interval.every(Duration.ofMinutes(1)),
                Duration.ofHours(1),
                List.of());

        Firing firing = new SnapshotDispatcher(inventory, bus, Clock.fixed(NOW, ZoneOffset.UTC)).dispatch(policy, NOW);

        assertThat(firing.failedVms()).containsExactly("vm-a");
        assertThat(firing.jobIds()).containsExactly(SnapshotDispatcher.jobId("p", "vm-b", NOW));
    }
}
