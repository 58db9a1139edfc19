package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.RestorePointSelector.AtOrBefore;
import io.tidemark.repository.RestorePointSelector.ById;
import io.tidemark.repository.RestorePointSelector.Newest;
import io.tidemark.repository.RestorePointSelector.NoRestorePointException;
import io.tidemark.repository.RestorePointSelector.PreDeploy;
import io.tidemark.testkit.FakeClock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class RestorePointSelectorTest {

    private static final Instant T0 = Instant.parse("2026-11-24T00:00:00Z");
    private static final String AT = "file:/repo";

    private final FakeClock clock = new FakeClock(Instant.parse("2026-11-24T12:00:00Z"));
    private final RestorePointSelector selector = new RestorePointSelector(clock);

    /** Points every hour from T0 (ids p00..p11); p03 and p07 by pre-deploy hooks. */
    private static List<Manifest> points() {
        List<Manifest> out = new ArrayList<>();
        for (int h = 0; h < 12; h++) {
            Trigger t =
                    switch (h) {
                        case 3 ->
                            new Trigger(
                                    TriggerKind.HOOK, Map.of("app", "shop", "commit", "a1b2c3d4e5", "pipeline", "p1"));
                        case 7 ->
                            new Trigger(
                                    TriggerKind.HOOK, Map.of("app", "cart", "commit", "a1b2ffff00", "pipeline", "p2"));
                        case 8 ->
                            new Trigger(
                                    TriggerKind.HOOK, Map.of("app", "cart", "commit", "a1b2ffff00", "pipeline", "p3"));
                        default -> Trigger.schedule("pol");
                    };
            out.add(point(String.format("p%02d", h), T0.plusSeconds(3600L * h), t));
        }
        return out;
    }

    private static Manifest point(String id, Instant captured, Trigger trigger) {
        return new Manifest(
                1,
                id,
                "web-1",
                "hv1",
                "job-" + id,
                captured,
                captured.plusSeconds(5),
                ConsistencyAchieved.CRASH,
                trigger,
                "pol",
                Optional.empty(),
                List.of());
    }

    private Manifest select(RestorePointSelector.Criterion c) {
        return selector.select(points(), "web-1", AT, c);
    }

    @Test
    void noCriterionOrLatestIsTheNewest() {
        assertThat(selector.parse(null, null, null)).isEqualTo(new Newest());
        assertThat(selector.parse("latest", null, null)).isEqualTo(new Newest());
        assertThat(select(new Newest()).id()).isEqualTo("p11");
    }

    @Test
    void byIdFindsThePointAndAMissingIdListsTheNearestIds() {
        assertThat(select(selector.parse("p05", null, null)).id()).isEqualTo("p05");
        assertThatThrownBy(() -> select(new ById("p05x")))
                .isInstanceOf(NoRestorePointException.class)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no restore point 'p05x' of VM 'web-1' in file:/repo")
                .hasMessageContaining("p04 (captured 2026-11-24T04:00:00Z)")
                .hasMessageContaining("p05 (captured")
                .hasMessageContaining("p06 (captured")
                .hasMessageNotContaining("p00 (")
                .hasMessageNotContaining("p11 (");
    }

    @Test
    void atIsTheNewestPointCapturedAtOrBeforeTheTime() {
        assertThat(select(new AtOrBefore(T0.plusSeconds(3 * 3600))).id()).isEqualTo("p03");
        assertThat(select(new AtOrBefore(T0.plusSeconds(3 * 3600 + 3599))).id()).isEqualTo("p03");
        assertThat(select(new AtOrBefore(Instant.parse("2030-01-01T00:00:00Z"))).id())
                .isEqualTo("p11");
    }

    @Test
    void aTimeBeforeEveryPointListsTheOldest() {
        assertThatThrownBy(() -> select(new AtOrBefore(T0.minusSeconds(1))))
                .isInstanceOf(NoRestorePointException.class)
                .hasMessageContaining("captured at or before 2026-11-23T23:59:59Z")
                .hasMessageContaining("the oldest ones: p00 (captured 2026-11-24T00:00:00Z)")
                .hasMessageContaining("p04 (")
                .hasMessageNotContaining("p05 (");
    }

    @Test
    void timesParseAsIsoOrRelativeToTheClock() {
        assertThat(selector.parseTime("2026-11-24T03:00:00Z")).isEqualTo(T0.plusSeconds(3 * 3600));
        assertThat(selector.parseTime("2026-11-24T05:00+02:00")).isEqualTo(T0.plusSeconds(3 * 3600));
        assertThat(selector.parseTime("2026-11-24T03:00")).isEqualTo(T0.plusSeconds(3 * 3600));
        assertThat(selector.parseTime("2026-11-24")).isEqualTo(T0);
        assertThat(selector.parseTime("now")).isEqualTo(clock.instant());
        assertThat(selector.parseTime("2h ago")).isEqualTo(clock.instant().minusSeconds(7200));
        assertThat(selector.parseTime("1d12h ago")).isEqualTo(clock.instant().minusSeconds(36 * 3600));
        assertThat(selector.parseTime("90m ago")).isEqualTo(clock.instant().minusSeconds(90 * 60));
        assertThat(selector.parseTime("2 hours 30 minutes ago"))
                .isEqualTo(clock.instant().minusSeconds(9000));
        // 2h before the clock (12:00) is 10:00: the point captured then
        assertThat(select(selector.parse(null, "2h ago", null)).id()).isEqualTo("p10");
        assertThat(select(selector.parse(null, "119m ago", null)).id()).isEqualTo("p10");
        assertThat(select(selector.parse(null, "121m ago", null)).id()).isEqualTo("p09");
    }

    @Test
    void aMalformedTimeOrTagOrTwoCriteriaAreBadInput() {
        assertThatThrownBy(() -> selector.parse(null, "yesterday-ish", null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'yesterday-ish' is not a time")
                .hasMessageContaining("2h ago");
        assertThatThrownBy(() -> selector.parse(null, " ago", null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> selector.parse(null, null, "deploy:abc123"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("pre-deploy:SHA");
        assertThatThrownBy(() -> selector.parse(null, null, "pre-deploy:ab"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least 4 characters");
        assertThatThrownBy(() -> selector.parse("p01", "2h ago", null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("only one of --point, --at and --tag");
    }

    @Test
    void aPreDeployTagMatchesTheHookCommitOrItsAbbreviation() {
        assertThat(selector.parse(null, null, "pre-deploy:shop@a1b2c3d"))
                .isEqualTo(new PreDeploy(Optional.of("shop"), "a1b2c3d"));
        assertThat(select(selector.parse(null, null, "pre-deploy:a1b2c3d4e5")).id())
                .isEqualTo("p03");
        assertThat(select(selector.parse(null, null, "pre-deploy:A1B2C3")).id()).isEqualTo("p03");
        // one commit snapshotted twice (two pipelines): the newest
        assertThat(select(selector.parse(null, null, "pre-deploy:cart@a1b2ff")).id())
                .isEqualTo("p08");
    }

    @Test
    void anAmbiguousOrUnknownTagIsRefusedWithTheKnownTags() {
        assertThatThrownBy(() -> select(selector.parse(null, null, "pre-deploy:a1b2")))
                .isInstanceOf(NoRestorePointException.class)
                .hasMessageContaining("is ambiguous")
                .hasMessageContaining("a1b2c3d4e5")
                .hasMessageContaining("a1b2ffff00");
        assertThatThrownBy(() -> select(selector.parse(null, null, "pre-deploy:shop@a1b2ffff")))
                .isInstanceOf(NoRestorePointException.class)
                .hasMessageContaining("is tagged pre-deploy:shop@a1b2ffff")
                .hasMessageContaining("the newest pre-deploy points: p03 (captured 2026-11-24T03:00:00Z,"
                        + " pre-deploy:shop@a1b2c3d4e5)")
                .hasMessageContaining("p08 (");
        List<Manifest> scheduled =
                points().stream().filter(m -> !m.trigger().is(TriggerKind.HOOK)).toList();
        assertThatThrownBy(() -> selector.select(scheduled, "web-1", AT, new PreDeploy(Optional.empty(), "abcd")))
                .hasMessageContaining("none of its 9 points was taken by a pre-deploy hook");
    }

    @Test
    void aVmWithoutPointsSaysSo() {
        assertThatThrownBy(() -> selector.select(List.of(), "db-9", AT, new Newest()))
                .isInstanceOf(NoRestorePointException.class)
                .hasMessageContaining("VM 'db-9' has no restore points in file:/repo");
    }

    @Test
    void aTimeInTheFutureIsAnErrorNotTheNewestPoint() {
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> selector.parse(null, "2026-11-24T13:00:00Z", null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--at '2026-11-24T13:00:00Z' is 2026-11-24T13:00:00Z, in the future")
                .hasMessageContaining("now is 2026-11-24T12:00:00Z")
                .hasMessageContaining("--point latest");
        // a few seconds ahead (another machine's clock) is still now
        org.assertj.core.api.Assertions.assertThat(selector.parse(null, "2026-11-24T12:00:30Z", null))
                .isNotNull();
    }
}
