package io.tidemark.targets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class RateLimitedObjectTargetTest {

    private static final long MIB = 1 << 20;

    private final InMemoryObjectTarget store = new InMemoryObjectTarget("store");

    @Test
    void uploadsStayWithinTenPercentOfTheLimitOverSeconds() {
        FakeTime time = FakeTime.advancing();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, 2 * MIB, time, time);
        Instant start = time.instant();
        long sent = 0;
        // objects of several sizes, some larger than the 100 ms bucket, for 5 s of (fake) time
        int[] sizes = {256 << 10, 4 << 20, 100_000, 1, 64 << 10};
        for (int i = 0; Duration.between(start, time.instant()).compareTo(Duration.ofSeconds(5)) < 0; i++) {
            byte[] data = new byte[sizes[i % sizes.length]];
            target.putIfAbsent("chunks/" + i, data);
            sent += data.length;
            time.advance(Duration.ofMillis(3)); // the transfer itself takes time too
        }
        double seconds = Duration.between(start, time.instant()).toNanos() / 1e9;

        assertThat(sent / seconds).isCloseTo(2.0 * MIB, within(0.1 * 2 * MIB));
        assertThat(sent / seconds).isLessThanOrEqualTo(2.0 * MIB);
    }

    @Test
    void downloadsStayWithinTenPercentOfTheLimitOverSeconds() {
        for (int i = 0; i < 8; i++) {
            store.putIfAbsent("chunks/" + i, new byte[512 << 10]);
        }
        FakeTime time = FakeTime.advancing();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, MIB, time, time);
        Instant start = time.instant();
        long received = 0;
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 8; i++) {
                received += target.get("chunks/" + i).orElseThrow().length;
            }
        }
        double seconds = Duration.between(start, time.instant()).toNanos() / 1e9;

        assertThat(seconds).isCloseTo(12.0, within(0.01)); // 12 MiB at 1 MiB/s
        assertThat(received / seconds).isCloseTo(MIB, within(0.1 * MIB));
    }

    @Test
    void oneBucketIsSharedByAllThreads() throws Exception {
        // time stands still: 4 threads × 25 puts of 64 KiB at 1 MiB/s arrive "at once", so each put
        // must wait for everything reserved before it — 62.5 ms more per put, whoever reserved it
        FakeTime time = FakeTime.frozen();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, MIB, time, time);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> writers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int thread = t;
                writers.add(pool.submit(() -> {
                    for (int i = 0; i < 25; i++) {
                        target.putIfAbsent("chunks/" + thread + "-" + i, new byte[64 << 10]);
                    }
                }));
            }
            for (Future<?> w : writers) {
                w.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }

        List<Long> waits =
                time.sleeps().stream().map(Duration::toNanos).sorted().toList();
        assertThat(waits).hasSize(100);
        for (int k = 0; k < 100; k++) {
            assertThat(waits.get(k)).isCloseTo((k + 1) * 62_500_000L, within(1_000L));
        }
        assertThat(store.keys()).hasSize(100);
    }

    @Test
    void afterIdlingAtMostAHundredMillisecondsWorthGoesWithoutWaiting() {
        FakeTime time = FakeTime.advancing();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, 1_000_000, time, time);
        target.putIfAbsent("chunks/warm", new byte[1]);
        time.advance(Duration.ofSeconds(10));

        target.putIfAbsent("chunks/a", new byte[60_000]);
        target.putIfAbsent("chunks/b", new byte[60_000]);

        // the bucket held 100 000 bytes: the first put is free, the second owes 20 000 bytes = 20 ms
        assertThat(time.sleeps().subList(1, 3)).containsExactly(Duration.ZERO, Duration.ofMillis(20));
    }

    @Test
    void uploadsAndDownloadsHaveTheirOwnBudgets() {
        FakeTime time = FakeTime.frozen();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, MIB, time, time);

        target.putIfAbsent("chunks/a", new byte[(int) MIB]);
        target.get("chunks/a");

        assertThat(time.sleeps()).containsExactly(Duration.ofSeconds(1), Duration.ofSeconds(1));
    }

    @Test
    void requestsWithoutBodiesAndMissingObjectsCostNothing() {
        FakeTime time = FakeTime.frozen();
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, 1, time, time);
        store.putIfAbsent("chunks/a", new byte[1000]);

        assertThat(target.exists("chunks/a")).isTrue();
        assertThat(target.list("chunks/")).containsExactly("chunks/a");
        assertThat(target.get("chunks/missing")).isEmpty();
        target.delete("chunks/a");

        assertThat(time.sleeps()).isEmpty();
    }

    @Test
    void anInterruptedWaitIsRetriableAndKeepsTheInterrupt() {
        Sleeper interrupted = d -> {
            throw new InterruptedException("shutting down");
        };
        RateLimitedObjectTarget target = new RateLimitedObjectTarget(store, 10, FakeTime.frozen(), interrupted);
        try {
            assertThatThrownBy(() -> target.putIfAbsent("chunks/a", new byte[100]))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("upload of chunks/a on memory://store interrupted");
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
        assertThat(store.keys()).isEmpty();
    }

    @Test
    void aLimitMustBePositive() {
        assertThatThrownBy(() -> new RateLimitedObjectTarget(store, 0)).hasMessageContaining("must be positive");
    }
}
