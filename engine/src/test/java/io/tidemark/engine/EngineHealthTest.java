package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.bus.EventBus;
import io.tidemark.replicator.Reconciler;
import io.tidemark.testkit.FakeClock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class EngineHealthTest {

    private final FakeClock clock = new FakeClock(Instant.parse("2026-12-06T00:00:00Z"));
    private final AtomicReference<List<EventBus.SubscriptionState>> subs = new AtomicReference<>(List.of());
    private final AtomicReference<Map<String, Reconciler.TargetState>> targets = new AtomicReference<>(Map.of());
    private final EngineHealth health = new EngineHealth(subs::get, targets::get, "hv1", clock);

    private static EventBus.SubscriptionState sub(String group, boolean running) {
        return new EventBus.SubscriptionState(
                group,
                List.of("t"),
                running,
                running ? 0 : 2,
                running ? Optional.empty() : Optional.of("broker not available"),
                Optional.empty());
    }

    private static Reconciler.TargetState target(String name, boolean up) {
        return new Reconciler.TargetState(
                name,
                Optional.of(Instant.parse("2026-12-06T00:00:00Z")),
                up,
                up ? Optional.empty() : Optional.of("connection refused; check that it is up"),
                Optional.empty(),
                up ? Map.of() : Map.of("vm1", 2),
                Optional.empty(),
                0,
                Optional.empty());
    }

    private void allStarted() {
        health.started("scheduler");
        health.started("worker");
        health.started("replicator");
        health.rpoChecked();
    }

    @Test
    void readyWhenEveryRoleRunsAndEveryTargetAnswered() {
        allStarted();
        subs.set(List.of(sub("tidemark-worker-hv1", true), sub("tidemark-replicator-s3", true)));
        targets.set(Map.of("s3", target("s3", true)));

        assertThat(health.readiness().ready()).isTrue();
        assertThat(health.liveness()).contains("\"status\":\"live\"");
    }

    @Test
    void aDownTargetAndAStoppedSubscriptionAreNamedWithTheirErrors() {
        allStarted();
        subs.set(List.of(sub("tidemark-worker-hv1", true), sub("tidemark-replicator-s3", false)));
        targets.set(Map.of("s3", target("s3", false), "vault", target("vault", true)));

        EngineHealth.Readiness r = health.readiness();

        assertThat(r.ready()).isFalse();
        assertThat(health.components())
                .filteredOn(c -> !c.ready())
                .extracting(EngineHealth.Component::name)
                .containsExactlyInAnyOrder("bus", "replicator", "target:s3");
        assertThat(r.json())
                .contains("broker not available")
                .contains("connection refused")
                .contains("\"missingPoints\":2")
                .contains("\"target:vault\":{\"ready\":true");
    }

    @Test
    void aWatchdogThatStoppedCheckingIsNotReady() {
        allStarted();
        clock.advance(EngineHealth.RPO_CHECK_STALE.plus(Duration.ofSeconds(1)));

        assertThat(health.components())
                .filteredOn(c -> c.name().equals("rpo"))
                .singleElement()
                .satisfies(c -> assertThat(c.ready()).isFalse());
    }

    @Test
    void aVmWithoutAnyPointHasItsRpoMetricAndTargetsTheirGauges() {
        io.tidemark.scheduler.InMemoryInventory inventory = new io.tidemark.scheduler.InMemoryInventory();
        inventory.put("web-1", "hv1", Map.of());
        io.tidemark.scheduler.RpoTracker rpo = new io.tidemark.scheduler.RpoTracker(
                io.tidemark.policies.PolicySet.of(io.tidemark.policies.Policy.of(
                        "web",
                        io.tidemark.policies.VmSelector.ofNames("web-1"),
                        io.tidemark.policies.Schedule.Interval.every(Duration.ofMinutes(5)),
                        Duration.ofMinutes(30),
                        List.of())),
                inventory,
                clock);
        rpo.refreshInventory();
        clock.advance(Duration.ofMinutes(31));

        assertThat(MetricsServer.render(rpo))
                .contains("tidemark_rpo_seconds{vm=\"web-1\",location=\"local\",policy=\"web\"} 1860.0")
                .contains("tidemark_rpo_violated{vm=\"web-1\",location=\"local\",policy=\"web\"} 1");
        assertThat(MetricsServer.renderTargets(Map.of("s3", target("s3", false)), clock.instant()))
                .contains("tidemark_target_up{target=\"s3\"} 0")
                .contains("tidemark_replication_missing_points{target=\"s3\"} 2");
    }

    @Test
    void aTargetNotProbedYetHasNoUpSampleRatherThanADownOne() {
        Reconciler.TargetState unprobed = new Reconciler.TargetState(
                "vault",
                Optional.empty(),
                false,
                Optional.empty(),
                Optional.empty(),
                Map.of(),
                Optional.empty(),
                0,
                Optional.empty());

        assertThat(MetricsServer.renderTargets(Map.of("vault", unprobed), clock.instant()))
                .doesNotContain("tidemark_target_up{")
                .doesNotContain("tidemark_target_probe_timestamp_seconds{")
                .contains("tidemark_replication_missing_points{target=\"vault\"} 0");
    }
}
