package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.DemoGuest;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The end-to-end tests' verdict on a restore point: its disks restored from S3 equal the disks at its moment. */
class DemoScenarioMatchesTest {

    private static final Instant T0 = Instant.parse("2026-11-24T00:00:00Z");

    private static DemoScenario.Point point(String id, Map<String, String> sha256) {
        Manifest m = new Manifest(
                1,
                id,
                DemoScenario.VM,
                "hv1",
                "j",
                T0,
                T0,
                io.tidemark.core.event.ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "p",
                Optional.empty(),
                List.of());
        return new DemoScenario.Point(m, new DemoGuest.Moment(sha256, Map.of()), Duration.ZERO);
    }

    private static Restorer.Result restored(String sha256) {
        return new Restorer.Result("img", "raw", 1, 1, 1, sha256);
    }

    @Test
    void aPointWithEveryDiskRestoredAsAtItsMomentMatchesAndADifferentDiskDoesNot() {
        DemoScenario.Point p = point("p1", Map.of("vda", "aa", "vdb", "bb"));
        DemoScenario.Outcome same = new DemoScenario.Outcome(
                List.of(p), Map.of("p1", Map.of("vda", restored("aa"), "vdb", restored("bb"))), null);
        DemoScenario.Outcome other = new DemoScenario.Outcome(
                List.of(p), Map.of("p1", Map.of("vda", restored("aa"), "vdb", restored("cc"))), null);
        assertThat(same.matches(p)).isTrue();
        assertThat(other.matches(p)).isFalse();
    }

    @Test
    void aPointWithNoDisksRestoredDoesNotMatch() {
        DemoScenario.Point p = point("p1", Map.of("vda", "aa"));
        assertThat(new DemoScenario.Outcome(List.of(p), Map.of("p1", Map.of()), null).matches(p))
                .isFalse();
    }
}
