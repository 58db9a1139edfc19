package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Change detection and heartbeats of the inventory publisher, on a fake clock and a recording bus. */
class InventoryPublisherTest {

    private static final Duration HEARTBEAT = Duration.ofMinutes(5);

    private final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T01:00:00Z"));
    private final ListedVms hv = new ListedVms();
    private final RecordingEventBus bus = new RecordingEventBus();
    private final Map<String, Map<String, String>> labels = new ConcurrentSkipListMap<>();
    private final InventoryPublisher publisher = new InventoryPublisher(
            "hv-a", hv, bus, clock, vm -> labels.getOrDefault(vm.name(), Map.of()), Duration.ofSeconds(10), HEARTBEAT);

    @AfterEach
    void tearDown() {
        publisher.close();
    }

    @Test
    void publishesNewVmsKeyedByNameOnTheInventoryTopic() {
        hv.put("web-1", 64);
        labels.put("web-1", Map.of("tier", "web"));

        assertThat(publisher.publishOnce().placed()).isEqualTo(1);

        assertThat(bus.published()).singleElement().satisfies(p -> {
            assertThat(p.topic()).isEqualTo(Topics.INVENTORY);
            assertThat(p.key()).isEqualTo("web-1");
            assertThat(p.event().payload())
                    .isEqualTo(new VmPlaced(
                            "web-1",
                            "hv-a",
                            Map.of("tier", "web"),
                            List.of(new VmPlaced.Disk("vda", 64)),
                            clock.instant()));
        });
    }

    @Test
    void unchangedVmsAreNotRepublishedUntilTheHeartbeat() {
        hv.put("web-1", 64);
        publisher.publishOnce();
        clock.advance(Duration.ofSeconds(10));

        InventoryPublisher.Round quiet = publisher.publishOnce();
        clock.advance(HEARTBEAT.minusSeconds(11));
        InventoryPublisher.Round stillQuiet = publisher.publishOnce();

        assertThat(quiet.placed() + quiet.gone()).isZero();
        assertThat(stillQuiet.placed() + stillQuiet.gone()).isZero();
        assertThat(bus.payloads(VmPlaced.class)).hasSize(1);

        clock.advance(Duration.ofSeconds(1)); // HEARTBEAT after the first round
        InventoryPublisher.Round heartbeat = publisher.publishOnce();
        assertThat(heartbeat.full()).isTrue();
        assertThat(heartbeat.placed()).isEqualTo(1);
        assertThat(bus.payloads(VmPlaced.class))
                .last()
                .extracting(VmPlaced::seenAt)
                .isEqualTo(clock.instant());
    }

    @Test
    void aChangedDiskOrLabelIsRepublished() {
        hv.put("web-1", 64);
        hv.put("db-1", 128);
        publisher.publishOnce();

        hv.put("web-1", 96); // resized
        labels.put("db-1", Map.of("tier", "db"));
        clock.advance(Duration.ofSeconds(10));
        InventoryPublisher.Round round = publisher.publishOnce();

        assertThat(round.placed()).isEqualTo(2);
        assertThat(bus.payloads(VmPlaced.class).subList(2, 4))
                .extracting(VmPlaced::vm, p -> p.disks().get(0).sizeBytes(), VmPlaced::labels)
                .containsExactlyInAnyOrder(
                        org.assertj.core.groups.Tuple.tuple("web-1", 96L, Map.of()),
                        org.assertj.core.groups.Tuple.tuple("db-1", 128L, Map.of("tier", "db")));
    }

    @Test
    void aVmThatDisappearsIsGoneOnceAndOnlyIfItWasPublished() {
        hv.put("web-1", 64);
        publisher.publishOnce();

        hv.remove("web-1");
        clock.advance(Duration.ofSeconds(10));
        assertThat(publisher.publishOnce().gone()).isEqualTo(1);
        clock.advance(Duration.ofSeconds(10));
        assertThat(publisher.publishOnce().gone()).isZero();

        assertThat(bus.payloads(VmGone.class)).containsExactly(new VmGone("web-1", "hv-a"));
        assertThat(bus.published()).last().satisfies(p -> assertThat(p.key()).isEqualTo("web-1"));

        // back again (migrated back): placed anew
        hv.put("web-1", 64);
        clock.advance(Duration.ofSeconds(10));
        assertThat(publisher.publishOnce().placed()).isEqualTo(1);
    }

    @Test
    void aFailedPublishIsRetriedInTheNextRound() {
        FailingBus failing = new FailingBus();
        try (InventoryPublisher p =
                new InventoryPublisher("hv-a", hv, failing, clock, vm -> Map.of(), Duration.ofSeconds(10), HEARTBEAT)) {
            hv.put("web-1", 64);
            failing.down.set(true);
            assertThatThrownBy(p::publishOnce).isInstanceOf(RetriableException.class);

            failing.down.set(false);
            clock.advance(Duration.ofSeconds(10));
            assertThat(p.publishOnce().placed()).isEqualTo(1);
            assertThat(failing.recorded.payloads(VmPlaced.class)).hasSize(1);
        }
    }

    @Test
    void startPublishesAtOnceOnTheCallingThread() {
        hv.put("web-1", 64);
        publisher.start();
        assertThat(bus.payloads(VmPlaced.class)).extracting(VmPlaced::vm).containsExactly("web-1");
    }

    @Test
    void rejectsAHeartbeatShorterThanTheInterval() {
        assertThatThrownBy(() -> new InventoryPublisher(
                        "hv-a", hv, bus, clock, vm -> Map.of(), Duration.ofMinutes(1), Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /** A hypervisor whose VM list the test sets; one disk {@code vda} per VM. Cannot capture. */
    private static final class ListedVms implements Hypervisor {
        private final Map<String, Long> vms = new ConcurrentSkipListMap<>();

        void put(String vm, long diskBytes) {
            vms.put(vm, diskBytes);
        }

        void remove(String vm) {
            vms.remove(vm);
        }

        @Override
        public List<VmInfo> list() {
            return vms.entrySet().stream()
                    .map(e -> new VmInfo(e.getKey(), List.of(new DiskInfo("vda", "drive-vda", e.getValue()))))
                    .toList();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            throw new PermanentException("this fake lists VMs only");
        }

        @Override
        public void close() {}
    }

    /** A bus that fails every publish while {@code down}. */
    private static final class FailingBus implements io.tidemark.core.bus.EventBus {
        final AtomicBoolean down = new AtomicBoolean();
        final RecordingEventBus recorded = new RecordingEventBus();

        @Override
        public void publish(String topic, String key, Event event) {
            if (down.get()) {
                throw new RetriableException("broker down");
            }
            recorded.publish(topic, key, event);
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return recorded.subscribe(group, topics, handler);
        }

        @Override
        public void close() {}
    }
}
