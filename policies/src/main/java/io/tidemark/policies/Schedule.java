package io.tidemark.policies;

import java.time.Duration;
import java.util.Objects;

/**
 * When a policy fires: every fixed interval, or at the times of a Quartz cron expression (in UTC).
 * Either may carry a jitter: the firing is delayed by a fixed offset, derived from the policy name,
 * between zero and the jitter, so that many policies do not all fire at the same instant.
 */
public sealed interface Schedule permits Schedule.Interval, Schedule.Cron {

    /** The upper bound (exclusive) of the delay added to each firing; {@link Duration#ZERO} for none. */
    Duration jitter();

    /**
     * Fires every {@code every}.
     *
     * @param every time between two firings; positive
     * @param jitter see {@link Schedule#jitter()}
     */
    record Interval(Duration every, Duration jitter) implements Schedule {
        public Interval {
            Objects.requireNonNull(every, "every");
            Objects.requireNonNull(jitter, "jitter");
            if (every.isNegative() || every.isZero()) {
                throw new IllegalArgumentException("interval must be positive: " + every);
            }
        }

        /** An interval without jitter. */
        public static Interval every(Duration every) {
            return new Interval(every, Duration.ZERO);
        }
    }

    /**
     * Fires at the times of a Quartz cron expression, evaluated in UTC.
     *
     * @param expression a valid {@code org.quartz.CronExpression}, such as {@code 0 0/15 * * * ?}
     * @param jitter see {@link Schedule#jitter()}
     */
    record Cron(String expression, Duration jitter) implements Schedule {
        public Cron {
            Objects.requireNonNull(expression, "expression");
            Objects.requireNonNull(jitter, "jitter");
        }

        /** A cron schedule without jitter. */
        public static Cron of(String expression) {
            return new Cron(expression, Duration.ZERO);
        }
    }
}
