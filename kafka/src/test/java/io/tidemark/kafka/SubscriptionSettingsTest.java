package io.tidemark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class SubscriptionSettingsTest {

    private static final Instant T0 = Instant.parse("2026-12-01T10:00:00Z");

    @Test
    void retryPausesDoubleUpToTheirCapAndStopAtMaxAttempts() {
        SubscriptionSettings s = SubscriptionSettings.DEFAULT; // 6 attempts, 2 s doubling to 1 min, 10 min
        assertThat(s.backoffAfter(1)).isEqualTo(Duration.ofSeconds(2));
        assertThat(s.backoffAfter(2)).isEqualTo(Duration.ofSeconds(4));
        assertThat(s.backoffAfter(5)).isEqualTo(Duration.ofSeconds(32));
        assertThat(s.backoffAfter(6)).isEqualTo(Duration.ofMinutes(1));
        assertThat(s.backoffAfter(40)).isEqualTo(Duration.ofMinutes(1));
        assertThat(s.allowsAnother(5, T0, T0)).isTrue();
        assertThat(s.allowsAnother(6, T0, T0))
                .as("the sixth attempt was the last")
                .isFalse();
    }

    @Test
    void noAttemptIsPlannedBeyondGiveUpAfter() {
        SubscriptionSettings s = SubscriptionSettings.DEFAULT;
        assertThat(s.allowsAnother(1, T0, T0.plus(Duration.ofMinutes(9)).plusSeconds(58)))
                .isTrue();
        assertThat(s.allowsAnother(1, T0, T0.plus(Duration.ofMinutes(9)).plusSeconds(59)))
                .as("the next attempt would start after 10 min")
                .isFalse();
    }

    @Test
    void restartPausesDoubleUpToTheirCap() {
        SubscriptionSettings s = SubscriptionSettings.DEFAULT; // 1 s doubling to 1 min
        assertThat(s.restartBackoffAfter(1)).isEqualTo(Duration.ofSeconds(1));
        assertThat(s.restartBackoffAfter(3)).isEqualTo(Duration.ofSeconds(4));
        assertThat(s.restartBackoffAfter(7)).isEqualTo(Duration.ofMinutes(1));
        assertThat(s.restartBackoffAfter(100)).isEqualTo(Duration.ofMinutes(1));
    }

    @Test
    void aFirstBackoffAboveTheCapRaisesTheCap() {
        assertThat(SubscriptionSettings.DEFAULT
                        .withInitialBackoff(Duration.ofMinutes(5))
                        .backoffAfter(3))
                .isEqualTo(Duration.ofMinutes(5));
        assertThatThrownBy(() -> new SubscriptionSettings(
                        0, Duration.ZERO, Duration.ZERO, Duration.ZERO, Duration.ZERO, Duration.ZERO, Duration.ZERO, 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxAttempts");
    }
}
