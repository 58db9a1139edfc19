package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.event.ConsistencyPolicy;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import org.junit.jupiter.api.Test;

class PolicyPlanTest {

    private static final Instant NOW = Instant.parse("2026-01-01T00:00:00Z");

    private static Policy policy(Schedule schedule, Duration rpo, Map<String, Retention> retention) {
        return new Policy(
                "web",
                VmSelector.ofNames("web-1"),
                schedule,
                ConsistencyPolicy.CRASH,
                rpo,
                Optional.empty(),
                Optional.empty(),
                List.of("offsite"),
                retention,
                Optional.empty());
    }

    @Test
    void intervalFiresFromNowPlusTheJitterOffsetEveryInterval() {
        Policy p = policy(
                new Schedule.Interval(Duration.ofMinutes(15), Duration.ofSeconds(30)), Duration.ofHours(1), Map.of());
        Duration offset = FireTimes.jitterOffset(p);
        // fixed by the policy's name: floorMod("web".hashCode() * 0x9E3779B9, 30 000 ms)
        assertThat(offset).isEqualTo(Duration.ofMillis(5_172));
        assertThat(FireTimes.jitterOffset(policy(
                        new Schedule.Interval(Duration.ofMinutes(15), Duration.ofMillis(700)),
                        Duration.ofHours(1),
                        Map.of())))
                .as("the same name under a 700 ms jitter")
                .isEqualTo(Duration.ofMillis(572));
        assertThat(FireTimes.next(p, NOW, 3))
                .containsExactly(
                        Instant.parse("2026-01-01T00:00:05.172Z"),
                        Instant.parse("2026-01-01T00:15:05.172Z"),
                        Instant.parse("2026-01-01T00:30:05.172Z"));
    }

    @Test
    void cronFiresAtTheExpressionInUtc() {
        Policy p = policy(Schedule.Cron.of("0 0 2 * * ?"), Duration.ofDays(2), Map.of());
        assertThat(FireTimes.next(p, NOW, 2))
                .containsExactly(Instant.parse("2026-01-01T02:00:00Z"), Instant.parse("2026-01-02T02:00:00Z"));
    }

    @Test
    void intervalPlusBackupWithinTheRpoIsFeasible() {
        Policy p = policy(Schedule.Interval.every(Duration.ofMinutes(15)), Duration.ofMinutes(30), Map.of());
        PolicyPlan plan = PolicyPlan.of(p, PolicyPlan.Options.defaults(NOW));
        assertThat(plan.feasible()).isTrue();
        assertThat(plan.nextFireTimes()).hasSize(5).startsWith(NOW);
    }

    @Test
    void intervalLongerThanTheRpoSaysWhy() {
        Policy p = policy(Schedule.Interval.every(Duration.ofHours(1)), Duration.ofMinutes(30), Map.of());
        PolicyPlan plan = PolicyPlan.of(p, PolicyPlan.Options.defaults(NOW));
        assertThat(plan.feasible()).isFalse();
        assertThat(plan.problems()).containsExactly("interval 1h + 1m backup exceeds rpo 30m");
    }

    @Test
    void jitterCountsAgainstTheRpo() {
        Policy p = policy(
                new Schedule.Interval(Duration.ofMinutes(28), Duration.ofMinutes(2)), Duration.ofMinutes(30), Map.of());
        assertThat(PolicyPlan.of(p, PolicyPlan.Options.defaults(NOW)).problems())
                .containsExactly("interval 28m + jitter 2m + 1m backup exceeds rpo 30m");
    }

    @Test
    void cronUsesTheLongestGapBetweenFirings() {
        // 02:00 and 04:00 every day: the longest gap is 22h
        Policy p = policy(Schedule.Cron.of("0 0 2,4 * * ?"), Duration.ofHours(12), Map.of());
        PolicyPlan plan = PolicyPlan.of(p, PolicyPlan.Options.defaults(NOW));
        assertThat(plan.longestGap()).isEqualTo(Duration.ofHours(22));
        assertThat(plan.problems()).containsExactly("cron gap up to 22h + 1m backup exceeds rpo 12h");
    }

    @Test
    void dataThatCannotBeShippedInTimeIsInfeasible() {
        Policy p = policy(Schedule.Interval.every(Duration.ofMinutes(15)), Duration.ofMinutes(30), Map.of());
        // 36000 MB/h over 15 min = 9000 MB; at 10 MB/s that is 15m to ship: 15m + 1m + 15m > 30m
        PolicyPlan.Options options = new PolicyPlan.Options(
                NOW, 5, Duration.ofDays(1), Duration.ofMinutes(1), OptionalDouble.of(36_000), OptionalDouble.of(10));
        assertThat(PolicyPlan.of(p, options).problems())
                .containsExactly("interval 15m + 1m backup + 15m to ship 9000 MB at 10 MB/s exceeds rpo 30m");
        PolicyPlan.Options fast = new PolicyPlan.Options(
                NOW, 5, Duration.ofDays(1), Duration.ofMinutes(1), OptionalDouble.of(36_000), OptionalDouble.of(100));
        assertThat(PolicyPlan.of(p, fast).feasible()).isTrue();
    }

    @Test
    void eachTargetIsJudgedAgainstItsOwnRpoAndTheLocalPointsIgnoreShipping() {
        Policy p = policy(Schedule.Interval.every(Duration.ofMinutes(15)), Duration.ofMinutes(30), Map.of())
                .withTargetRpo("offsite", Duration.ofHours(2));
        // 15m + 1m locally meets 30m; shipped (+15m) it would not, but offsite promises 2h
        PolicyPlan.Options options = new PolicyPlan.Options(
                NOW, 5, Duration.ofDays(1), Duration.ofMinutes(1), OptionalDouble.of(36_000), OptionalDouble.of(10));
        assertThat(PolicyPlan.of(p, options).feasible()).isTrue();
        Policy strict = p.withTargetRpo("offsite", Duration.ofMinutes(20));
        assertThat(PolicyPlan.of(strict, options).problems())
                .containsExactly(
                        "interval 15m + 1m backup + 15m to ship 9000 MB at 10 MB/s exceeds rpo 20m at offsite");
    }

    @Test
    void shippingSlowerThanTheIntervalReportsAGrowingBacklog() {
        Policy p = policy(Schedule.Interval.every(Duration.ofMinutes(15)), Duration.ofDays(1), Map.of());
        PolicyPlan.Options options = new PolicyPlan.Options(
                NOW, 5, Duration.ofDays(1), Duration.ofMinutes(1), OptionalDouble.of(36_000), OptionalDouble.of(1));
        assertThat(PolicyPlan.of(p, options).problems())
                .singleElement()
                .asString()
                .contains("backlog grows");
    }

    @Test
    void retentionSimulationCountsWhatEachLocationKeeps() {
        Policy p = policy(
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                Map.of("local", new Retention(24, 0, 7, 0, 0, 0)));
        PolicyPlan plan = PolicyPlan.of(p, PolicyPlan.Options.defaults(NOW));
        assertThat(plan.retention())
                .extracting(PolicyPlan.LocationOutlook::location)
                .containsExactly("local", "offsite");
        PolicyPlan.LocationOutlook local = plan.retention().get(0);
        assertThat(local.created()).isEqualTo(30 * 24);
        // the last 24 hours, plus the newest point of the 6 days before the last one
        assertThat(local.kept()).isEqualTo(24 + 6);
        assertThat(local.oldestKept()).contains(Instant.parse("2026-01-24T23:00:00Z"));
        PolicyPlan.LocationOutlook offsite = plan.retention().get(1);
        assertThat(offsite.kept()).isEqualTo(30 * 24);
        assertThat(offsite.oldestKept()).contains(NOW);
    }

    @Test
    void shippingCheckNeedsBothRateAndBandwidth() {
        assertThatThrownBy(() -> new PolicyPlan.Options(
                        NOW, 5, Duration.ofDays(1), Duration.ZERO, OptionalDouble.of(1), OptionalDouble.empty()))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
