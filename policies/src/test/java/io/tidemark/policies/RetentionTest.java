package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class RetentionTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:30:00Z");

    /** A point every hour for {@code hours} hours. */
    private static List<Instant> hourly(int hours) {
        List<Instant> out = new ArrayList<>();
        for (int h = 0; h < hours; h++) {
            out.add(T0.plus(Duration.ofHours(h)));
        }
        return out;
    }

    @Test
    void noRuleKeepsEverything() {
        assertThat(Retention.keepAll().keep(hourly(50))).hasSize(50);
    }

    @Test
    void lastKeepsTheNewest() {
        List<Instant> points = hourly(10);
        assertThat(new Retention(3, 0, 0, 0, 0, 0).keep(points))
                .containsExactly(points.get(9), points.get(8), points.get(7));
    }

    @Test
    void dailyKeepsTheNewestPointOfEachOfTheNewestDays() {
        List<Instant> points = hourly(24 * 5); // five days
        var kept = new Retention(0, 0, 3, 0, 0, 0).keep(points);
        assertThat(kept)
                .containsExactly(
                        T0.plus(Duration.ofHours(24 * 5 - 1)), // day 5: its newest point
                        T0.plus(Duration.ofHours(24 * 4 - 1)),
                        T0.plus(Duration.ofHours(24 * 3 - 1)));
    }

    @Test
    void rulesAddUpAndAPointKeptTwiceCountsOnce() {
        List<Instant> points = hourly(24 * 40);
        var kept = new Retention(2, 5, 7, 4, 2, 1).keep(points);
        // last 2 are inside the 5 hourly; 7 daily share the newest; weeks and months add older ones
        assertThat(kept).hasSizeBetween(12, 16);
        assertThat(kept).contains(points.get(points.size() - 1), points.get(0 + 24 * 31 - 1)); // end of January kept
        assertThat(points).containsAll(kept);
    }
}
