package io.tidemark.scheduler.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.PolicyScheduler;
import io.tidemark.scheduler.QuartzJdbc;
import io.tidemark.testkit.fixture.Fixtures;
import io.tidemark.testkit.fixture.PostgresFixture;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Restarting a scheduler on the clustered JDBC store: a stored trigger whose schedule is unchanged
 * is kept (its next fire time survives the restart), and an engine that was down past several fire
 * times catches up with one firing, not one per missed fire time.
 */
@Timeout(60)
class JdbcRestartIT {
    static final Duration DEADLINE = Duration.ofSeconds(30);
    static final Duration INTERVAL = Duration.ofSeconds(1);
    static final Duration MISFIRE_THRESHOLD = Duration.ofSeconds(1);

    static PostgresFixture postgres;

    final InMemoryInventory inventory = new InMemoryInventory().put("vm-1", "host-a", Map.of());
    final Recorder bus = new Recorder();

    @BeforeAll
    static void startPostgres() {
        postgres = QuartzTables.loadInto(Fixtures.fromEnvironment().postgres("quartz"));
    }

    @AfterAll
    static void stopPostgres() {
        if (postgres != null) {
            postgres.close();
        }
    }

    private PolicyScheduler start(String cluster, Policy policy) {
        QuartzJdbc jdbc = QuartzJdbc.of(postgres.jdbcUrl(), PostgresFixture.USER, "", cluster)
                .withCheckinInterval(Duration.ofSeconds(1))
                .withMisfireThreshold(MISFIRE_THRESHOLD);
        return PolicyScheduler.start(PolicySet.of(policy), inventory, bus, Clock.systemUTC(), jdbc.properties());
    }

    private static Policy every(Duration interval) {
        return Policy.of(
                "p", VmSelector.ofNames("vm-1"), Schedule.Interval.every(interval), Duration.ofHours(1), List.of("t"));
    }

    @Test
    void aRestartKeepsTheStoredTriggerUnlessTheScheduleChanged() {
        Instant next;
        long firstStarted = System.currentTimeMillis();
        try (PolicyScheduler first = start("restart", every(Duration.ofHours(1)))) {
            // the first firing is at start; then the next one is an hour away, and stays unacquired
            await().atMost(DEADLINE).until(() -> first.nextFireTime("p")
                    .orElseThrow()
                    .isAfter(Instant.ofEpochMilli(firstStarted).plus(Duration.ofMinutes(30))));
            next = first.nextFireTime("p").orElseThrow();
        }
        // a replaced trigger would now start (and so fire) at a later instant
        await().atMost(DEADLINE).until(() -> System.currentTimeMillis() > firstStarted + 100);
        try (PolicyScheduler second = start("restart", every(Duration.ofHours(1)))) {
            assertThat(second.nextFireTime("p")).contains(next);
        }
        try (PolicyScheduler changed = start("restart", every(Duration.ofHours(2)))) {
            assertThat(changed.nextFireTime("p").orElseThrow()).isNotEqualTo(next);
        }
    }

    @Test
    void anEngineDownPastSeveralFireTimesCatchesUpOnce() {
        try (PolicyScheduler first = start("misfire", every(INTERVAL))) {
            await().atMost(DEADLINE).until(() -> bus.fireTimes().size() >= 2);
        }
        Instant lastBeforeStop = bus.fireTimes().get(bus.fireTimes().size() - 1);
        // down for 4 fire times, all of them later than the misfire threshold by the restart
        long restartAfter = lastBeforeStop
                .plus(INTERVAL.multipliedBy(4))
                .plus(MISFIRE_THRESHOLD)
                .toEpochMilli();
        await().atMost(DEADLINE).until(() -> System.currentTimeMillis() > restartAfter);
        int before = bus.fireTimes().size();

        Instant restartedAt = Instant.now();
        try (PolicyScheduler second = start("misfire", every(INTERVAL))) {
            await().atMost(DEADLINE).until(() -> bus.fireTimes().size() >= before + 3);
        }

        List<Instant> after = bus.fireTimes().subList(before, bus.fireTimes().size());
        // the missed fire times are not fired one by one: the first firing is "now", then the
        // schedule goes on from it (Quartz re-phases a SimpleTrigger rescheduled after a misfire).
        // "Now" comes up to check-in + 7.5 s after the restart: the stopped instance left the
        // trigger acquired, and the new instance (another AUTO id) frees it only once it declares
        // the old one failed (ADR 7).
        assertThat(after.get(0)).isAfterOrEqualTo(restartedAt.minusMillis(1));
        assertThat(after).doesNotHaveDuplicates();
        for (int i = 1; i < after.size(); i++) {
            assertThat(Duration.between(after.get(i - 1), after.get(i))).isEqualTo(INTERVAL);
        }
    }

    /** Records the fire times published, in order. */
    static final class Recorder implements EventBus {
        private final List<Instant> fireTimes = new CopyOnWriteArrayList<>();

        @Override
        public void publish(String topic, String key, Event event) {
            fireTimes.add(((SnapshotJob) event.payload()).scheduledFor());
        }

        List<Instant> fireTimes() {
            return List.copyOf(fireTimes);
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }
}
