package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.tidemark.testkit.FakeClock;
import java.time.Duration;
import java.time.Instant;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** A job's own read limits on a fake clock: every wait of the limit moves the clock, nothing else does. */
class ReadLimitTest {

    private static final int KiB = 1024;
    private static final int MiB = 1 << 20;

    private final FakeClock clock = new FakeClock(Instant.parse("2026-12-07T00:00:00Z"));

    private double seconds(Instant from) {
        return Duration.between(from, clock.instant()).toNanos() / 1e9;
    }

    @Test
    void theIopsLimitPacesReadRequestsWhateverTheirSize() {
        ReadLimit limit = ReadLimit.of(
                OptionalLong.empty(), OptionalLong.of(100), HostReadLimit.Share.NONE, clock, clock::advance);
        Instant start = clock.instant();
        for (int i = 0; i < 1000; i++) {
            limit.acquire(4 * KiB);
            // never ahead of the limit: request i is sent no earlier than i/100 s after the first
            assertThat(seconds(start)).isGreaterThanOrEqualTo(i / 100.0 - 1e-9);
        }
        // 1000 requests at 100/s: the last is sent 9.99 s after the first
        assertThat(seconds(start)).isCloseTo(9.99, within(0.001));
    }

    @Test
    void withBothLimitsTheStricterOneBinds() {
        OptionalLong bandwidth = OptionalLong.of(MiB);
        OptionalLong iops = OptionalLong.of(64);
        // 256 KiB reads: the bandwidth allows 4 per second, the I/O limit 64
        ReadLimit big = ReadLimit.of(bandwidth, iops, HostReadLimit.Share.NONE, clock, clock::advance);
        Instant start = clock.instant();
        for (int i = 0; i < 41; i++) {
            big.acquire(256 * KiB);
        }
        assertThat(seconds(start)).isCloseTo(10.0, within(0.001));
        // 4 KiB reads: the bandwidth allows 256 per second, the I/O limit 64
        ReadLimit small = ReadLimit.of(bandwidth, iops, HostReadLimit.Share.NONE, clock, clock::advance);
        start = clock.instant();
        for (int i = 0; i < 641; i++) {
            small.acquire(4 * KiB);
        }
        assertThat(seconds(start)).isCloseTo(10.0, within(0.001));
    }

    @Test
    void theBandwidthLimitAloneIsAsBefore() {
        ReadLimit limit = ReadLimit.of(OptionalLong.of(MiB), clock, clock::advance);
        Instant start = clock.instant();
        limit.acquire(256 * KiB); // the first read is never delayed
        assertThat(clock.instant()).isEqualTo(start);
        for (int i = 0; i < 4; i++) {
            limit.acquire(256 * KiB);
        }
        assertThat(seconds(start)).isCloseTo(1.0, within(0.001));
        assertThat(ReadLimit.of(OptionalLong.empty(), clock, clock::advance)).isSameAs(ReadLimit.NONE);
    }

    @Test
    void aLimitOfZeroIsRefused() {
        assertThatThrownBy(() -> ReadLimit.of(
                        OptionalLong.empty(), OptionalLong.of(0), HostReadLimit.Share.NONE, clock, clock::advance))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("read I/O limit must be positive");
    }
}
