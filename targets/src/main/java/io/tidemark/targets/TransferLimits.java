package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import java.time.Duration;

/**
 * The settings every kind of target takes ({@code retryDeadline}, {@code bandwidthLimit}), with
 * their defaults.
 *
 * @param retryDeadline how long one object operation is retried on transient faults; zero means a
 *     single attempt; {@code null} means {@link #DEFAULT_RETRY_DEADLINE}
 * @param bandwidthLimit the most object bytes per second in each direction; 0 means no limit
 */
public record TransferLimits(Duration retryDeadline, long bandwidthLimit) {

    /** How long an object operation is retried when the config does not say: 5 minutes. */
    public static final Duration DEFAULT_RETRY_DEADLINE = Duration.ofMinutes(5);

    /** Both settings at their defaults: retried for 5 minutes, no bandwidth limit. */
    public static final TransferLimits DEFAULTS = new TransferLimits(null, 0);

    /** Applies the defaults; a negative deadline or rate is a permanent error. */
    public TransferLimits {
        retryDeadline = retryDeadline == null ? DEFAULT_RETRY_DEADLINE : retryDeadline;
        if (retryDeadline.isNegative()) {
            throw new PermanentException("retryDeadline must not be negative, got " + retryDeadline);
        }
        if (bandwidthLimit < 0) {
            throw new PermanentException("bandwidthLimit must not be negative, got " + bandwidthLimit);
        }
    }
}
