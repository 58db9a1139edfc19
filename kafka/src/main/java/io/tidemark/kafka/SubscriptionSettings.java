package io.tidemark.kafka;

import java.time.Duration;
import java.time.Instant;

/**
 * How the subscriptions of a {@link KafkaEventBus} retry, drain, restart and bound their memory.
 *
 * @param maxAttempts how often a handler is called for one event when it keeps failing retriably
 *     (the first call included) before the event is dead-lettered
 * @param initialBackoff the pause after the first retriable failure; it doubles after each further one
 * @param maxBackoff the longest pause between two attempts
 * @param giveUpAfter no attempt starts later than this after the first one: the event is
 *     dead-lettered instead
 * @param drainTimeout how long closing a subscription waits for the handlers running then
 * @param restartBackoff the pause before a consumer that failed is restarted; it doubles after each
 *     further failure
 * @param maxRestartBackoff the longest pause before a restart
 * @param maxBufferedPerPartition events fetched from one partition and not yet handled above which
 *     the partition is paused (resumed at half)
 */
public record SubscriptionSettings(
        int maxAttempts,
        Duration initialBackoff,
        Duration maxBackoff,
        Duration giveUpAfter,
        Duration drainTimeout,
        Duration restartBackoff,
        Duration maxRestartBackoff,
        int maxBufferedPerPartition) {

    /** Six attempts over about a minute, 20 s to drain, restarts after 1 s up to 1 min apart. */
    public static final SubscriptionSettings DEFAULT = new SubscriptionSettings(
            6,
            Duration.ofSeconds(2),
            Duration.ofMinutes(1),
            Duration.ofMinutes(10),
            Duration.ofSeconds(20),
            Duration.ofSeconds(1),
            Duration.ofMinutes(1),
            500);

    public SubscriptionSettings {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1, not " + maxAttempts);
        }
        if (maxBufferedPerPartition < 1) {
            throw new IllegalArgumentException(
                    "maxBufferedPerPartition must be at least 1, not " + maxBufferedPerPartition);
        }
        for (Duration d :
                new Duration[] {initialBackoff, maxBackoff, giveUpAfter, drainTimeout, restartBackoff, maxRestartBackoff
                }) {
            if (d.isNegative()) {
                throw new IllegalArgumentException("durations must not be negative: " + d);
            }
        }
    }

    /** These settings with retries starting after {@code backoff}. */
    public SubscriptionSettings withInitialBackoff(Duration backoff) {
        return new SubscriptionSettings(
                maxAttempts,
                backoff,
                maxBackoff.compareTo(backoff) < 0 ? backoff : maxBackoff,
                giveUpAfter,
                drainTimeout,
                restartBackoff,
                maxRestartBackoff,
                maxBufferedPerPartition);
    }

    /** The pause after {@code failures} failed attempts (1 for the first): doubling, capped. */
    Duration backoffAfter(int failures) {
        return doubled(initialBackoff, failures - 1, maxBackoff);
    }

    /** Whether an event whose first attempt began at {@code first} gets another attempt. */
    boolean allowsAnother(int failures, Instant first, Instant now) {
        return failures < maxAttempts && !now.plus(backoffAfter(failures)).isAfter(first.plus(giveUpAfter));
    }

    /** The pause before restart number {@code restarts + 1} of a failed consumer. */
    Duration restartBackoffAfter(int consecutiveFailures) {
        return doubled(restartBackoff, consecutiveFailures - 1, maxRestartBackoff);
    }

    private static Duration doubled(Duration first, int times, Duration cap) {
        Duration d = first;
        for (int i = 0; i < times && d.compareTo(cap) < 0; i++) {
            d = d.multipliedBy(2);
        }
        return d.compareTo(cap) > 0 ? cap : d;
    }
}
