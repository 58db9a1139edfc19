package io.tidemark.targets;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.ForwardingObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.util.List;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

class RetryingObjectTargetTest {

    private static final RetryingObjectTarget.Backoff BACKOFF =
            new RetryingObjectTarget.Backoff(Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofSeconds(10));

    private final InMemoryObjectTarget store = new InMemoryObjectTarget("store");
    private final FakeTime time = FakeTime.advancing();

    private RetryingObjectTarget retrying(ObjectTarget delegate, RetryingObjectTarget.Backoff backoff, double draw) {
        return new RetryingObjectTarget(delegate, backoff, time, time, fixed(draw));
    }

    @Test
    void succeedsAfterRetriableFailuresOnEveryOperation() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 0.5);

        store.failNext(3, () -> new RetriableException("injected 503"));
        assertThat(target.putIfAbsent("chunks/a", "A".getBytes(UTF_8))).isTrue();
        store.failNext(2, () -> new RetriableException("injected reset"));
        assertThat(target.get("chunks/a")).hasValueSatisfying(v -> assertThat(v).isEqualTo("A".getBytes(UTF_8)));
        store.failNext(1, () -> new RetriableException("injected timeout"));
        assertThat(target.exists("chunks/a")).isTrue();
        store.failNext(1, () -> new RetriableException("injected timeout"));
        assertThat(target.list("chunks/")).containsExactly("chunks/a");
        store.failNext(1, () -> new RetriableException("injected timeout"));
        target.delete("chunks/a");

        assertThat(store.keys()).isEmpty();
        assertThat(time.sleeps()).hasSize(3 + 2 + 1 + 1 + 1);
    }

    @Test
    void aPermanentFailureIsNotRetried() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 0.5);
        PermanentException denied = new PermanentException("HTTP 403: check the access key");
        store.failNext(5, () -> denied);

        assertThatThrownBy(() -> target.putIfAbsent("chunks/a", new byte[] {1})).isSameAs(denied);
        assertThat(store.pendingFailures()).isEqualTo(4);
        assertThat(time.sleeps()).isEmpty();
    }

    @Test
    void aBugIsNotRetried() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 0.5);
        store.failNext(5, () -> new IllegalStateException("bug"));

        assertThatThrownBy(() -> target.get("chunks/a")).isInstanceOf(IllegalStateException.class);
        assertThat(store.pendingFailures()).isEqualTo(4);
    }

    @Test
    void theDeadlineIsRespectedAndTheErrorSaysHowManyAttemptsOverHowLong() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 1.0);
        store.failNext(1000, () -> new RetriableException("S3 write of s3://b/chunks/a failed: HTTP 503 SlowDown"));
        var start = time.instant();

        assertThatThrownBy(() -> target.putIfAbsent("chunks/a", new byte[] {1}))
                .isInstanceOf(RetriableException.class)
                // waits 0.1 + 0.2 + 0.4 + 0.8 + 8 × 1.0, then the last one cut to the 0.5 s left
                .hasMessage("gave up after 14 attempts over 10.0 s (retry deadline 10.0 s): S3 write of s3://b/chunks/a"
                        + " failed: HTTP 503 SlowDown")
                .cause()
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("HTTP 503");
        assertThat(Duration.between(start, time.instant())).isEqualTo(Duration.ofSeconds(10));
        assertThat(store.keys()).isEmpty();
    }

    @Test
    void noAttemptStartsAfterTheDeadlineEvenWhenCallsAreSlow() {
        // every attempt takes 3 s of the 10 s deadline
        store.failNext(1000, () -> {
            time.advance(Duration.ofSeconds(3));
            return new RetriableException("timed out");
        });
        RetryingObjectTarget target = retrying(store, BACKOFF, 1.0);

        assertThatThrownBy(() -> target.get("chunks/a"))
                .isInstanceOf(RetriableException.class)
                // 3 + 0.1 + 3 + 0.2 + 3 + 0.4 = 9.7 s: a fourth attempt starts in time and ends at 12.7 s
                .hasMessageStartingWith("gave up after 4 attempts over 12.7 s");
        assertThat(time.sleeps())
                .containsExactly(Duration.ofMillis(100), Duration.ofMillis(200), Duration.ofMillis(400));
    }

    @Test
    void aZeroDeadlineMeansOneAttempt() {
        RetryingObjectTarget target = retrying(store, BACKOFF.withDeadline(Duration.ZERO), 1.0);
        store.failNext(2, () -> new RetriableException("injected"));

        assertThatThrownBy(() -> target.exists("chunks/a"))
                .isInstanceOf(RetriableException.class)
                .hasMessageStartingWith("gave up after 1 attempt over 0.0 s");
        assertThat(store.pendingFailures()).isEqualTo(1);
    }

    @Test
    void backoffDoublesFromTheBaseUpToTheCap() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 1.0); // the largest draw: each wait is its ceiling
        store.failNext(7, () -> new RetriableException("injected"));

        target.exists("chunks/a");

        assertThat(time.sleeps())
                .extracting(Duration::toMillis)
                .containsExactly(100L, 200L, 400L, 800L, 1000L, 1000L, 1000L);
    }

    @Test
    void jitterIsFullFromZeroToTheCeiling() {
        store.failNext(4, () -> new RetriableException("injected"));
        retrying(store, BACKOFF, 0.0).exists("chunks/a");
        assertThat(time.sleeps()).containsOnly(Duration.ZERO);

        FakeTime other = FakeTime.advancing();
        store.failNext(4, () -> new RetriableException("injected"));
        new RetryingObjectTarget(store, BACKOFF, other, other, fixed(0.25)).exists("chunks/a");
        assertThat(other.sleeps()).extracting(Duration::toMillis).containsExactly(25L, 50L, 100L, 200L);
    }

    @Test
    void theCeilingNeverOverflows() {
        assertThat(BACKOFF.ceiling(1)).isEqualTo(Duration.ofMillis(100));
        assertThat(BACKOFF.ceiling(4)).isEqualTo(Duration.ofMillis(800));
        assertThat(BACKOFF.ceiling(5)).isEqualTo(Duration.ofSeconds(1));
        assertThat(BACKOFF.ceiling(64)).isEqualTo(Duration.ofSeconds(1));
        assertThat(BACKOFF.ceiling(Integer.MAX_VALUE)).isEqualTo(Duration.ofSeconds(1));
        assertThatThrownBy(() -> BACKOFF.ceiling(0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void badSettingsAreRejected() {
        assertThatThrownBy(() -> new RetryingObjectTarget.Backoff(Duration.ZERO, Duration.ofSeconds(1), Duration.ZERO))
                .hasMessageContaining("base must be positive");
        assertThatThrownBy(() ->
                        new RetryingObjectTarget.Backoff(Duration.ofSeconds(2), Duration.ofSeconds(1), Duration.ZERO))
                .hasMessageContaining("below its base");
        assertThatThrownBy(() -> new RetryingObjectTarget.Backoff(
                        Duration.ofSeconds(1), Duration.ofSeconds(1), Duration.ofSeconds(-1)))
                .hasMessageContaining("must not be negative");
    }

    @Test
    void aRetriedWriteThatFindsItsOwnEarlierAttemptAnswersAlreadyPresent() {
        // the first attempt stores the object but its answer is lost, as with a reset after the upload
        LostFirstAnswer ambiguous = new LostFirstAnswer(store);
        RetryingObjectTarget target = retrying(ambiguous, BACKOFF, 0.5);
        byte[] chunk = "content-addressed".getBytes(UTF_8);

        assertThat(target.putIfAbsent("chunks/c", chunk)).isFalse();
        assertThat(ambiguous.get("chunks/c"))
                .hasValueSatisfying(v -> assertThat(v).isEqualTo(chunk));
    }

    @Test
    void anInterruptedWaitStopsRetryingAndKeepsTheInterrupt() {
        Sleeper interrupted = d -> {
            throw new InterruptedException("shutting down");
        };
        RetryingObjectTarget target = new RetryingObjectTarget(store, BACKOFF, time, interrupted, fixed(0.5));
        store.failNext(3, () -> new RetriableException("injected"));
        try {
            assertThatThrownBy(() -> target.list(""))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("interrupted while waiting to retry after 1 attempt;");
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void failingFastUntilReachedDoesNotRetryBeforeTheFirstSuccess() {
        RetryingObjectTarget target =
                RetryingObjectTarget.failingFastUntilReached(store, BACKOFF, time, time, fixed(0.5));
        store.failNext(2, () -> new RetriableException("S3 look up failed: cannot reach the endpoint 127.0.0.1:1"));

        assertThatThrownBy(() -> target.exists("chunks/a"))
                .isInstanceOf(RetriableException.class)
                .hasMessageStartingWith("not retried: memory://store has not answered yet")
                .hasMessageEndingWith("cannot reach the endpoint 127.0.0.1:1");
        assertThat(store.pendingFailures()).isEqualTo(1);
        assertThat(time.sleeps()).isEmpty();

        store.failNext(0, () -> new RetriableException("none"));
        assertThat(target.exists("chunks/a")).isFalse(); // the first answer
        store.failNext(3, () -> new RetriableException("injected"));
        assertThat(target.exists("chunks/a")).isFalse();
        assertThat(time.sleeps()).hasSize(3);
    }

    @Test
    void describesAndClosesTheDelegate() {
        RetryingObjectTarget target = retrying(store, BACKOFF, 0.5);
        assertThat(target.describe()).isEqualTo("memory://store");
        assertThat(target.delegate()).isSameAs(store);
        target.close();
        assertThat(List.of(target.backoff())).containsExactly(BACKOFF);
    }

    /** Stores like its delegate, but the first write's answer is lost: it throws after storing. */
    private static final class LostFirstAnswer extends ForwardingObjectTarget {
        private boolean lost;

        LostFirstAnswer(ObjectTarget delegate) {
            super(delegate);
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            boolean wrote = delegate().putIfAbsent(key, data);
            if (!lost) {
                lost = true;
                throw new RetriableException("connection reset after the request was sent");
            }
            return wrote;
        }
    }

    /** A random source whose every {@code nextDouble()} is {@code u}; {@code 1.0} stands for the largest draw. */
    private static RandomGenerator fixed(double u) {
        double draw = Math.min(u, Math.nextDown(1.0));
        return new RandomGenerator() {
            @Override
            public long nextLong() {
                return 0; // not drawn: the wrapper asks for nextDouble only
            }

            @Override
            public double nextDouble() {
                return draw;
            }
        };
    }
}
