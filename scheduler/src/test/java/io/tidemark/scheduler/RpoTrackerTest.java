package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import io.tidemark.core.event.Event;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.RpoViolated;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RpoTrackerTest {

    private final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T00:00:00Z"));
    private final InMemoryInventory inventory = new InMemoryInventory();
    private final RecordingEventBus bus = new RecordingEventBus();
    private final RpoTracker tracker = new RpoTracker(
            PolicySet.of(
                    Policy.of(
                            "web",
                            VmSelector.ofNames("web-1"),
                            Schedule.Interval.every(Duration.ofMinutes(5)),
                            Duration.ofMinutes(30),
                            List.of("offsite")),
                    Policy.of(
                            "strict",
                            VmSelector.ofNames("web-1"),
                            Schedule.Interval.every(Duration.ofMinutes(1)),
                            Duration.ofMinutes(10),
                            List.of())),
            inventory,
            clock);

    @Test
    void measuresEveryRequiredLocationWithTheStrictestPolicy() {
        inventory.put("web-1", "hv1", Map.of());
        inventory.put("db-1", "hv1", Map.of()); // selected by no policy: not measured
        Instant t0 = clock.instant();
        tracker.handle(
                "tidemark.restore-points",
                Event.of("j", t0, new RestorePointCreated("web-1", "rp1", "web", List.of("offsite"), t0, 0, 0)));
        clock.advance(Duration.ofMinutes(3));
        tracker.handle(
                "tidemark.replication",
                Event.of("j", clock.instant(), new ReplicaCommitted("web-1", "rp1", "offsite", t0, 1, 1)));

        List<RpoTracker.Status> s = tracker.status();
        assertThat(s).extracting(RpoTracker.Status::location).containsExactly("local", "offsite");
        assertThat(s.get(0).policy()).isEqualTo("strict");
        assertThat(s.get(0).rpo()).isEqualTo(Duration.ofMinutes(10));
        assertThat(s.get(1).rpo()).isEqualTo(Duration.ofMinutes(30));
        assertThat(s).allSatisfy(x -> {
            assertThat(x.age()).contains(Duration.ofMinutes(3)); // measured from the capture, not the replication
            assertThat(x.violated()).isFalse();
        });
    }

    @Test
    void raisesOneEventWhenAViolationStartsAndAgainAfterItRecovers() {
        inventory.put("web-1", "hv1", Map.of());
        tracker.record("web-1", "local", clock.instant());
        tracker.record("web-1", "offsite", clock.instant());
        clock.advance(Duration.ofMinutes(11));
        assertThat(tracker.check(bus)).singleElement().satisfies(v -> assertThat(v.location())
                .isEqualTo("local"));
        assertThat(tracker.check(bus)).isEmpty(); // still violated: no second event
        assertThat(bus.payloads(RpoViolated.class)).singleElement().satisfies(v -> {
            assertThat(v.vm()).isEqualTo("web-1");
            assertThat(v.age()).isEqualTo(Duration.ofMinutes(11));
            assertThat(v.rpo()).isEqualTo(Duration.ofMinutes(10));
        });

        tracker.record("web-1", "local", clock.instant()); // a new point: recovered
        assertThat(tracker.check(bus)).isEmpty();
        clock.advance(Duration.ofMinutes(20)); // now both locations are past their RPO
        assertThat(tracker.check(bus)).extracting(RpoTracker.Status::location).containsExactly("local", "offsite");
        assertThat(bus.payloads(RpoViolated.class)).hasSize(3);
    }

    @Test
    void twoProcessesRaiseOneViolationUnderTheSameEventIdAndANewViolationUnderAnother() {
        // a second scheduler of the fleet: started later, its own clock and bus, the same facts
        FakeClock otherClock = new FakeClock(clock.instant().plusSeconds(7));
        InMemoryInventory otherInventory = new InMemoryInventory();
        RecordingEventBus otherBus = new RecordingEventBus();
        RpoTracker other = new RpoTracker(
                PolicySet.of(Policy.of(
                        "strict",
                        VmSelector.ofNames("web-1"),
                        Schedule.Interval.every(Duration.ofMinutes(1)),
                        Duration.ofMinutes(10),
                        List.of())),
                otherInventory,
                otherClock);
        inventory.put("web-1", "hv1", Map.of());
        otherInventory.put("web-1", "hv1", Map.of());
        Instant point = clock.instant();
        tracker.record("web-1", "local", point);
        tracker.record("web-1", "offsite", point);
        other.record("web-1", "local", point);
        clock.advance(Duration.ofMinutes(11));
        otherClock.advance(Duration.ofMinutes(12));

        tracker.check(bus);
        other.check(otherBus);

        Event mine = bus.published().get(0).event();
        Event theirs = otherBus.published().get(0).event();
        assertThat(theirs.eventId())
                .as("one violation, one event id, whichever process raised it")
                .isEqualTo(mine.eventId());
        assertThat(theirs.jobId()).isEqualTo(mine.jobId()).isEqualTo("rpo/web-1@local/" + point);

        tracker.record("web-1", "local", clock.instant()); // recovered, then violated again: another violation
        assertThat(tracker.check(bus)).isEmpty();
        clock.advance(Duration.ofMinutes(11));
        tracker.check(bus);
        assertThat(bus.published()).hasSize(2);
        assertThat(bus.published().get(1).event().eventId()).isNotEqualTo(mine.eventId());
    }

    @Test
    void aVmWithoutAnyPointIsMeasuredFromStartAndViolatesAfterOneRpo() {
        inventory.put("web-1", "hv1", Map.of());
        assertThat(tracker.status()).extracting(RpoTracker.Status::location).containsExactly("local", "offsite");
        assertThat(tracker.status()).allSatisfy(x -> assertThat(x.violated()).isFalse());
        clock.advance(Duration.ofMinutes(31));
        assertThat(tracker.status()).hasSize(2).allSatisfy(x -> {
            assertThat(x.violated()).isTrue();
            assertThat(x.newestCapturedAt()).isEmpty();
        });
    }

    @Test
    void aTargetWithItsOwnRpoIsHeldToIt() {
        InMemoryInventory hosts = new InMemoryInventory();
        hosts.put("db-1", "hv1", Map.of());
        Policy db = Policy.of(
                        "db",
                        VmSelector.ofNames("db-1"),
                        Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of("offsite", "vault"))
                .withTargetRpo("vault", Duration.ofHours(6));
        RpoTracker dbTracker = new RpoTracker(PolicySet.of(db), hosts, clock);
        Instant t0 = clock.instant();
        dbTracker.handle(
                "tidemark.restore-points",
                Event.of("j", t0, new RestorePointCreated("db-1", "rp1", "db", List.of("offsite", "vault"), t0, 0, 0)));
        for (String target : List.of("offsite", "vault")) {
            dbTracker.handle(
                    "tidemark.replication", Event.of("j", t0, new ReplicaCommitted("db-1", "rp1", target, t0, 1, 1)));
        }
        clock.advance(Duration.ofHours(1));

        assertThat(dbTracker.status())
                .extracting(RpoTracker.Status::location, RpoTracker.Status::rpo, RpoTracker.Status::violated)
                .containsExactly(
                        tuple("local", Duration.ofMinutes(30), true),
                        tuple("offsite", Duration.ofMinutes(30), true),
                        tuple("vault", Duration.ofHours(6), false));
    }

    @Test
    void aVmTheInventoryStopsListingKeepsBeingMeasuredAndRaisesItsViolation() {
        // a VM whose monitor does not answer is skipped by the hypervisor's listing while its jobs are stuck
        inventory.put("web-1", "hv1", Map.of());
        tracker.record("web-1", "local", clock.instant());
        tracker.record("web-1", "offsite", clock.instant());
        tracker.refreshInventory();
        inventory.remove("web-1");
        tracker.refreshInventory();
        clock.advance(Duration.ofMinutes(11));

        assertThat(tracker.check(bus))
                .extracting(RpoTracker.Status::vm, RpoTracker.Status::location)
                .containsExactly(tuple("web-1", "local"));
        assertThat(bus.payloads(RpoViolated.class)).hasSize(1);
    }

    @Test
    void aVmNotListedForLongerThanForgetAfterIsNoLongerMeasured() {
        inventory.put("web-1", "hv1", Map.of());
        tracker.refreshInventory();
        inventory.remove("web-1");
        clock.advance(RpoTracker.FORGET_AFTER.plusMinutes(1));
        tracker.refreshInventory();

        assertThat(tracker.status()).isEmpty();
    }

    @Test
    void aCheckAnswersFromMemoryWhileTheInventoryBlocks() throws Exception {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicBoolean blocking = new java.util.concurrent.atomic.AtomicBoolean();
        Inventory slow = new Inventory() {
            @Override
            public java.util.Optional<Placement> locate(String vm) {
                return inventory.locate(vm);
            }

            @Override
            public List<VmPlacement> all() {
                if (blocking.get()) {
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return inventory.all();
            }
        };
        RpoTracker t = new RpoTracker(
                PolicySet.of(Policy.of(
                        "web",
                        VmSelector.ofNames("web-1"),
                        Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of())),
                slow,
                clock);
        inventory.put("web-1", "hv1", Map.of());
        t.refreshInventory();
        blocking.set(true);
        Thread refresher = new Thread(t::refreshInventory, "refresher");
        refresher.start();
        try {
            clock.advance(Duration.ofMinutes(31)); // never got a point: violated one RPO after it was seen
            List<RpoTracker.Status> started = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                    Duration.ofSeconds(5), () -> t.check(bus));
            assertThat(started).singleElement().satisfies(s -> {
                assertThat(s.newestCapturedAt()).isEmpty();
                assertThat(s.without()).isEqualTo(Duration.ofMinutes(31));
            });
            assertThat(bus.payloads(RpoViolated.class)).singleElement().satisfies(v -> assertThat(v.age())
                    .isEqualTo(Duration.ofMinutes(31)));
        } finally {
            release.countDown();
            refresher.join(5_000);
        }
    }

    @Test
    void aViolationTheBusCouldNotTakeIsPublishedByTheNextCheck() {
        java.util.concurrent.atomic.AtomicBoolean down = new java.util.concurrent.atomic.AtomicBoolean(true);
        io.tidemark.core.bus.EventBus flaky = new io.tidemark.core.bus.EventBus() {
            @Override
            public void publish(String topic, String key, Event event) {
                if (down.get()) {
                    throw new io.tidemark.core.RetriableException("broker not available");
                }
                bus.publish(topic, key, event);
            }

            @Override
            public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
                throw new UnsupportedOperationException();
            }

            @Override
            public void close() {}
        };
        inventory.put("web-1", "hv1", Map.of());
        tracker.record("web-1", "local", clock.instant());
        tracker.record("web-1", "offsite", clock.instant());
        clock.advance(Duration.ofMinutes(11));

        assertThat(tracker.check(flaky)).isEmpty();
        down.set(false);

        assertThat(tracker.check(flaky)).hasSize(1);
        assertThat(bus.payloads(RpoViolated.class)).hasSize(1);
    }

    @Test
    void aVmTheLastLifeMeasuredIsMeasuredAfterARestartEvenWhenTheInventoryCannotListItNow() {
        // a restart while web-1's QMP socket is away: the inventory lists nothing, the remembered state names it
        tracker.record("web-1", "local", clock.instant());
        tracker.record("web-1", "offsite", clock.instant());
        tracker.measureRemembered(List.of("web-1"));
        tracker.refreshInventory(); // lists nothing: the remembered VM stays measured
        clock.advance(Duration.ofMinutes(11));
        assertThat(tracker.check(bus)).singleElement().satisfies(v -> {
            assertThat(v.vm()).isEqualTo("web-1");
            assertThat(v.location()).isEqualTo("local");
        });
        clock.advance(RpoTracker.FORGET_AFTER);
        tracker.refreshInventory(); // not listed for a day: forgotten like any VM that left
        assertThat(tracker.status()).isEmpty();
    }
}
