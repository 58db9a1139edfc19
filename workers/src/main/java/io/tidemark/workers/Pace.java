package io.tidemark.workers;

/**
 * A rate as a schedule of admissions (the generic cell rate algorithm): each admission of {@code
 * amount} units is due at the later of now and the moment the units admitted before it are paid
 * for at the rate, so the first is admitted at once, the rate over any stretch of busy time
 * converges on the limit from below, and idle time earns no credit for a later burst. Not
 * thread-safe: its owner holds a lock around {@link #reserve}.
 */
final class Pace {

    private final long perSecond;
    /** When the units admitted so far are paid for; {@link Long#MIN_VALUE} before the first. */
    private long paidAt = Long.MIN_VALUE;

    Pace(long perSecond) {
        if (perSecond <= 0) {
            throw new IllegalArgumentException("a rate must be positive, not " + perSecond);
        }
        this.perSecond = perSecond;
    }

    long perSecond() {
        return perSecond;
    }

    /**
     * Admits {@code amount} units, reserving the time they take at the rate.
     *
     * @param now the current time in nanoseconds
     * @return when the admission is due (nanoseconds, on the same scale as {@code now}); at or before
     *     {@code now} when it is due at once
     */
    long reserve(long amount, long now) {
        long due = Math.max(paidAt, now);
        paidAt = due + (long) Math.ceil(amount * 1e9 / perSecond);
        return due;
    }
}
