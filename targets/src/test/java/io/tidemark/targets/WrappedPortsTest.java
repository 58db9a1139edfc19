package io.tidemark.targets;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryColdStorage;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/**
 * {@link ObjectTarget#as}: a target opened as the engine opens it (retrying around throttled
 * around the adapter) answers the adapter's other ports, here {@link ColdStorage}, and its own
 * wrapper class; a target without the port answers empty.
 */
class WrappedPortsTest {

    @Test
    void theRetryAndRateWrappersAnswerTheAdaptersColdStorage() {
        InMemoryColdStorage adapter =
                new InMemoryColdStorage(new FakeClock(Instant.parse("2026-01-01T00:00:00Z")), Duration.ofHours(1));
        ObjectTarget opened = RetryingObjectTarget.failingFastUntilReached(
                new RateLimitedObjectTarget(adapter, 1 << 20),
                RetryingObjectTarget.Backoff.upTo(Duration.ofSeconds(1)));
        assertThat(opened.as(ColdStorage.class)).containsSame(adapter);
        assertThat(opened.as(InMemoryColdStorage.class)).containsSame(adapter);
        assertThat(opened.as(RateLimitedObjectTarget.class)).isPresent();
        assertThat(opened.as(RetryingObjectTarget.class).map(ObjectTarget.class::cast))
                .containsSame(opened);
    }

    @Test
    void aTargetWithoutThePortAnswersEmpty() {
        ObjectTarget opened = RetryingObjectTarget.failingFastUntilReached(
                new RateLimitedObjectTarget(new InMemoryObjectTarget(), 1 << 20),
                RetryingObjectTarget.Backoff.upTo(Duration.ofSeconds(1)));
        assertThat(opened.as(ColdStorage.class)).isEmpty();
    }
}
