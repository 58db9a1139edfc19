package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@link BackgroundWriteback}: one flush at a time, past a threshold; a failure fails the commit. */
class BackgroundWritebackTest {

    @Test
    void aFlushStartsOnlyPastTheThresholdAndNeverTwoAtOnce() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger started = new AtomicInteger();
        BackgroundWriteback w = new BackgroundWriteback("img", 100, () -> {
            started.incrementAndGet();
            assertThat(release.await(30, TimeUnit.SECONDS)).isTrue();
        });
        w.written(99);
        assertThat(started.get()).isZero();
        w.written(1); // 100: the first flush starts and blocks
        for (int i = 0; i < 10; i++) {
            w.written(1000); // past the threshold again, but one is running
        }
        release.countDown();
        w.finish(true);
        assertThat(started.get()).isEqualTo(1);
        assertThat(w.flushes()).isEqualTo(1);
        w.written(1000); // finished: no more flushes
        assertThat(started.get()).isEqualTo(1);
    }

    @Test
    void aFailedBackgroundFlushFailsTheCommitEvenIfALaterFlushSucceeds() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        BackgroundWriteback w = new BackgroundWriteback("disk.raw.partial", 1, () -> {
            if (calls.incrementAndGet() == 1) {
                throw new IOException("Input/output error");
            }
        });
        // written until a second flush has run and succeeded: it must not hide the first one's failure
        waitFor(() -> {
            w.written(1);
            return w.flushes() >= 1;
        });
        assertThat(calls.get()).isGreaterThanOrEqualTo(2);
        assertThatThrownBy(() -> w.finish(true))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("disk.raw.partial")
                .hasMessageContaining("Input/output error");
    }

    @Test
    void aRetriableFlushFailureStaysRetriableAndAnAbandonedImageIgnoresIt() throws Exception {
        BackgroundWriteback w = new BackgroundWriteback("rbd:pool/img", 1, () -> {
            throw new RetriableException("qemu-nbd stopped answering");
        });
        w.written(1);
        assertThatThrownBy(() -> w.finish(true)).isInstanceOf(RetriableException.class);
        BackgroundWriteback dropped = new BackgroundWriteback("rbd:pool/img", 1, () -> {
            throw new IOException("gone");
        });
        dropped.written(1);
        dropped.finish(false); // the image is being removed: nothing to report
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 30 s");
            }
            Thread.onSpinWait();
        }
    }
}
