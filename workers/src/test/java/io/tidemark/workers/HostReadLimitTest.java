package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.testkit.FakeClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.PriorityQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The host's aggregate read limit shared by concurrent jobs, on a fake clock: the combined rate,
 * each job's own limit within it, and fairness between a job with many reading threads and a job
 * with one. No test sleeps: time moves only when every reader waits for it.
 */
class HostReadLimitTest {

    private static final int KiB = 1024;
    private static final int MiB = 1 << 20;

    private final FakeClock clock = new FakeClock(Instant.parse("2026-12-07T00:00:00Z"));

    private double seconds(Instant from) {
        return Duration.between(from, clock.instant()).toNanos() / 1e9;
    }

    @Test
    void twoJobsTogetherStayWithinTheHostBandwidth() {
        HostReadLimit host = HostReadLimit.of(OptionalLong.of(4L * MiB), OptionalLong.empty(), clock, clock::advance);
        ReadLimit a = job(OptionalLong.empty(), host);
        ReadLimit b = job(OptionalLong.empty(), host);
        Instant start = clock.instant();
        long bytes = 0;
        for (int i = 0; i < 80; i++) { // the two jobs' reads interleaved, 256 KiB each
            (i % 2 == 0 ? a : b).acquire(256 * KiB);
            bytes += 256 * KiB;
        }
        // 80 reads of 256 KiB = 20 MiB at 4 MiB/s: the last read is sent 79/16 s after the first
        assertThat(seconds(start)).isCloseTo(79 / 16.0, within(0.001));
        assertThat(bytes / (seconds(start) + 0.0625)).isCloseTo(4.0 * MiB, within(0.01 * MiB));
    }

    @Test
    void theHostIopsLimitCountsTheRequestsOfEveryJob() {
        HostReadLimit host = HostReadLimit.of(OptionalLong.empty(), OptionalLong.of(50), clock, clock::advance);
        ReadLimit a = job(OptionalLong.empty(), host);
        ReadLimit b = job(OptionalLong.empty(), host);
        Instant start = clock.instant();
        for (int i = 0; i < 501; i++) {
            (i % 3 == 0 ? a : b).acquire(4 * KiB);
        }
        assertThat(seconds(start)).isCloseTo(10.0, within(0.001));
    }

    @Test
    void aJobsOwnLimitStillHoldsBelowTheHostLimit() {
        HostReadLimit host = HostReadLimit.of(OptionalLong.of(100L * MiB), OptionalLong.empty(), clock, clock::advance);
        ReadLimit slow = job(OptionalLong.of(MiB), host);
        Instant start = clock.instant();
        for (int i = 0; i < 41; i++) {
            slow.acquire(256 * KiB);
        }
        assertThat(seconds(start)).isCloseTo(10.0, within(0.001));
    }

    @Test
    void noHostLimitLeavesJobsAlone() {
        assertThat(HostReadLimit.of(OptionalLong.empty(), OptionalLong.empty(), clock, clock::advance))
                .isSameAs(HostReadLimit.NONE);
        assertThat(job(OptionalLong.empty(), HostReadLimit.NONE)).isSameAs(ReadLimit.NONE);
    }

    /**
     * Job A reads with four threads, job B with one, through a host limit of 10 reads per second: each
     * still gets every other turn, so B is not starved (with a turn per waiting thread A would get four
     * fifths). Time moves by steps: once both jobs wait, the clock jumps to the earliest wake-up.
     */
    @Test
    void aJobWithManyReadersDoesNotStarveAJobWithOne() throws InterruptedException {
        SteppedSleeper time = new SteppedSleeper(clock);
        HostReadLimit host = HostReadLimit.of(OptionalLong.empty(), OptionalLong.of(10), clock, time);
        ReadLimit a = ReadLimit.of(OptionalLong.empty(), OptionalLong.empty(), host.share(), clock, time);
        ReadLimit b = ReadLimit.of(OptionalLong.empty(), OptionalLong.empty(), host.share(), clock, time);
        AtomicLong readsA = new AtomicLong();
        AtomicLong readsB = new AtomicLong();
        List<Thread> readers = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            readers.add(reader("a" + i, a, readsA));
        }
        readers.add(reader("b", b, readsB));
        readers.forEach(Thread::start);
        Instant start = clock.instant();
        try {
            for (int step = 0; step < 200; step++) {
                // one waiting reader per job: the others of job A queue on its share, not on the host
                await().atMost(Duration.ofSeconds(30)).until(() -> time.sleeping() == 2);
                time.wakeEarliest();
            }
            await().atMost(Duration.ofSeconds(30)).until(() -> time.sleeping() == 2);
        } finally {
            time.stop();
            for (Thread t : readers) {
                t.join(30_000);
            }
        }
        long total = readsA.get() + readsB.get();
        // 20 s of fake time at 10 reads per second, plus the first read that is never delayed
        assertThat(seconds(start)).isCloseTo(20.0, within(0.2));
        assertThat(total).isBetween(200L, 202L);
        assertThat(Math.abs(readsA.get() - readsB.get())).isLessThanOrEqualTo(2);
    }

    private Thread reader(String name, ReadLimit limit, AtomicLong reads) {
        Thread t = new Thread(
                () -> {
                    try {
                        while (true) {
                            limit.acquire(64 * KiB);
                            reads.incrementAndGet();
                        }
                    } catch (RetriableException stopped) {
                        // interrupted by the end of the test
                    }
                },
                "reader-" + name);
        t.setDaemon(true);
        return t;
    }

    private ReadLimit job(OptionalLong bytesPerSecond, HostReadLimit host) {
        return ReadLimit.of(bytesPerSecond, OptionalLong.empty(), host.share(), clock, clock::advance);
    }

    /** Waits on the fake clock: a sleeper returns once the test has moved the clock past its wake-up time. */
    private static final class SteppedSleeper implements Sleeper {
        private final FakeClock clock;
        private final PriorityQueue<Instant> wakeUps = new PriorityQueue<>();
        private boolean stopped;

        SteppedSleeper(FakeClock clock) {
            this.clock = clock;
        }

        @Override
        public synchronized void sleep(Duration duration) throws InterruptedException {
            Instant until = clock.instant().plus(duration);
            wakeUps.add(until);
            try {
                while (clock.instant().isBefore(until)) {
                    if (stopped) {
                        throw new InterruptedException("test over");
                    }
                    wait();
                }
            } finally {
                wakeUps.remove(until);
            }
        }

        synchronized int sleeping() {
            return wakeUps.size();
        }

        synchronized void wakeEarliest() {
            clock.set(wakeUps.peek());
            notifyAll();
        }

        synchronized void stop() {
            stopped = true;
            notifyAll();
        }
    }
}
