package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import io.tidemark.testkit.FakeClock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The ordering rules of the inventory read from the bus: migrations, stale claims, readiness. */
class BusInventoryTest {

    private static final Duration STALE = Duration.ofMinutes(15);

    private final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T01:00:00Z"));
    private final io.tidemark.testkit.RecordingEventBus bus = new io.tidemark.testkit.RecordingEventBus();
    private final BusInventory inventory = BusInventory.start(bus, BusInventory.CatchUp.ALWAYS, STALE);

    @AfterEach
    void tearDown() {
        inventory.close();
    }

    private void publish(EventPayload payload) {
        bus.publish(Topics.INVENTORY, payload.vm(), Event.of("inventory", clock.instant(), payload));
    }

    private VmPlaced placed(String vm, String host) {
        return new VmPlaced(vm, host, Map.of("tier", "web"), List.of(new VmPlaced.Disk("vda", 64)), clock.instant());
    }

    private Optional<String> hostOf(String vm) {
        return inventory.locate(vm).map(Placement::host);
    }

    @Test
    void followsPlacementsWithTheirLabelsInVmOrder() {
        publish(placed("web-2", "hv-a"));
        publish(placed("web-1", "hv-b"));

        assertThat(inventory.all())
                .containsExactly(
                        VmPlacement.of("web-1", "hv-b", Map.of("tier", "web")),
                        VmPlacement.of("web-2", "hv-a", Map.of("tier", "web")));
        assertThat(inventory.locate("web-1")).contains(new Placement("hv-b", Map.of("tier", "web")));
        assertThat(inventory.locate("nope")).isEmpty();
    }

    @Test
    void goneFromTheCurrentHostRemovesTheVm() {
        publish(placed("web-1", "hv-a"));
        publish(new VmGone("web-1", "hv-a"));

        assertThat(hostOf("web-1")).isEmpty();
        assertThat(inventory.all()).isEmpty();
    }

    @Test
    void goneFromTheOldHostAfterPlacedOnTheNewOneKeepsTheNewPlacement() {
        publish(placed("web-1", "hv-a"));
        clock.advance(Duration.ofSeconds(3));
        publish(placed("web-1", "hv-b")); // the destination noticed first
        publish(new VmGone("web-1", "hv-a")); // the source's notice arrives late

        assertThat(hostOf("web-1")).contains("hv-b");
    }

    @Test
    void goneFromTheOldHostBeforePlacedOnTheNewOneEndsOnTheNewHost() {
        publish(placed("web-1", "hv-a"));
        publish(new VmGone("web-1", "hv-a"));
        clock.advance(Duration.ofSeconds(3));
        publish(placed("web-1", "hv-b"));

        assertThat(hostOf("web-1")).contains("hv-b");
    }

    @Test
    void aLateHeartbeatFromTheOldHostSeenEarlierDoesNotMoveTheVmBack() {
        VmPlaced oldHeartbeat = placed("web-1", "hv-a");
        clock.advance(Duration.ofSeconds(3));
        publish(placed("web-1", "hv-b"));
        publish(oldHeartbeat); // seen before hv-b's placement, delivered after it

        assertThat(hostOf("web-1")).contains("hv-b");
        publish(new VmGone("web-1", "hv-a"));
        assertThat(hostOf("web-1")).contains("hv-b");
    }

    @Test
    void whileBothHostsClaimTheVmTheLatestSeenWinsAndTheOtherTakesOverWhenItLeaves() {
        publish(placed("web-1", "hv-b")); // incoming side of a live migration
        clock.advance(Duration.ofSeconds(1));
        publish(placed("web-1", "hv-a")); // the source still runs it, seen later

        assertThat(hostOf("web-1")).contains("hv-a");
        publish(new VmGone("web-1", "hv-a")); // migration completed
        assertThat(hostOf("web-1")).contains("hv-b");
    }

    @Test
    void goneFromAHostThatNeverPlacedTheVmChangesNothing() {
        publish(placed("web-1", "hv-a"));
        publish(new VmGone("web-1", "hv-c"));
        publish(new VmGone("db-1", "hv-a"));

        assertThat(hostOf("web-1")).contains("hv-a");
        assertThat(inventory.all()).hasSize(1);
    }

    @Test
    void aStaleClaimOfAHostThatStoppedDoesNotComeBack() {
        publish(placed("web-1", "hv-a")); // hv-a then dies without withdrawing
        clock.advance(STALE.plusSeconds(1));
        publish(placed("web-1", "hv-b")); // restarted on hv-b
        publish(new VmGone("web-1", "hv-b")); // and stopped there

        assertThat(hostOf("web-1")).isEmpty();
    }

    @Test
    void aPlacementReplacesTheLabelsOfTheSameHost() {
        publish(placed("web-1", "hv-a"));
        publish(new VmPlaced("web-1", "hv-a", Map.of("tier", "db"), List.of(), clock.instant()));

        assertThat(inventory.locate("web-1")).contains(new Placement("hv-a", Map.of("tier", "db")));
    }

    @Test
    void otherEventsAreIgnored() {
        inventory.handle(
                Topics.INVENTORY,
                Event.of("j", clock.instant(), new io.tidemark.core.event.SnapshotCaptured("x", clock.instant())));
        assertThat(inventory.all()).isEmpty();
    }

    @Test
    void awaitReadyReturnsOnceCaughtUpAndOtherwiseFailsRetriablyAfterTheTimeout() {
        AtomicBoolean caughtUp = new AtomicBoolean(true);
        try (BusInventory ready = BusInventory.start(bus, (group, topic) -> caughtUp::get, STALE)) {
            ready.awaitReady(Duration.ofSeconds(5));
        }
        caughtUp.set(false);
        try (BusInventory lagging = BusInventory.start(bus, (group, topic) -> caughtUp::get, STALE)) {
            assertThatThrownBy(() -> lagging.awaitReady(Duration.ofMillis(50)))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(Topics.INVENTORY);
        }
    }

    @Test
    void eachInstanceReadsInAGroupOfItsOwn() {
        java.util.Set<String> groups = java.util.concurrent.ConcurrentHashMap.newKeySet();
        BusInventory.CatchUp recordGroup = (group, topic) -> {
            groups.add(group + "@" + topic);
            return () -> true;
        };
        try (BusInventory one = BusInventory.start(bus, recordGroup, STALE);
                BusInventory two = BusInventory.start(bus, recordGroup, STALE)) {
            one.awaitReady(Duration.ofSeconds(1));
            two.awaitReady(Duration.ofSeconds(1));
            assertThat(groups).hasSize(2).allSatisfy(g -> assertThat(g).endsWith("@" + Topics.INVENTORY));
        }
    }
}
