package io.tidemark.policies;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DurationSyntaxTest {
    @Test
    void parsesUnitsAndCombinations() {
        assertThat(DurationSyntax.parse("30s")).contains(Duration.ofSeconds(30));
        assertThat(DurationSyntax.parse("15m")).contains(Duration.ofMinutes(15));
        assertThat(DurationSyntax.parse("1h")).contains(Duration.ofHours(1));
        assertThat(DurationSyntax.parse("1d")).contains(Duration.ofDays(1));
        assertThat(DurationSyntax.parse("1h30m")).contains(Duration.ofMinutes(90));
        assertThat(DurationSyntax.parse("1d2h3m4s")).contains(Duration.ofSeconds(93_784));
    }

    @Test
    void refusesOtherSpellings() {
        for (String bad :
                new String[] {"", "15", "15 m", "m", "1m1h", "1.5h", "-1m", "1w", "1H", "99999999999999999999d"}) {
            assertThat(DurationSyntax.parse(bad)).as(bad).isEmpty();
        }
    }

    @Test
    void formatsRoundTrip() {
        assertThat(DurationSyntax.format(Duration.ofMinutes(90))).isEqualTo("1h30m");
        assertThat(DurationSyntax.format(Duration.ZERO)).isEqualTo("0s");
        assertThat(DurationSyntax.format(Duration.ofSeconds(93_784))).isEqualTo("1d2h3m4s");
    }
}
