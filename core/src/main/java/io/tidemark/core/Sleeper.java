package io.tidemark.core;

import java.time.Duration;

/**
 * Waiting, as a port: the retry and rate-limit wrappers and a job's read bandwidth limit wait
 * through it, so their tests advance a fake clock instead of sleeping (the counterpart of an
 * injected {@link java.time.Clock}). The one definition for every module (ADR 0010).
 */
@FunctionalInterface
public interface Sleeper {

    /** {@link Thread#sleep}: the real thing. */
    Sleeper SYSTEM = duration -> {
        if (duration.isNegative() || duration.isZero()) {
            return;
        }
        Thread.sleep(duration.toMillis(), (int) (duration.toNanos() % 1_000_000));
    };

    /**
     * Returns after {@code duration} has passed; at once when it is zero or negative.
     *
     * @throws InterruptedException if the thread is interrupted while waiting
     */
    void sleep(Duration duration) throws InterruptedException;
}
