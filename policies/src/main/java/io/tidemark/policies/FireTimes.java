package io.tidemark.policies;

import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.TimeZone;
import org.quartz.CronExpression;

/**
 * When a policy fires, computed the way the scheduler schedules it: an interval schedule fires at
 * {@code now + offset + k * every}; a cron schedule at each time of its expression (UTC) plus the
 * offset. The offset is fixed per policy, derived from its name, in {@code [0, jitter)}.
 */
public final class FireTimes {

    private static final TimeZone UTC = TimeZone.getTimeZone("UTC");

    private FireTimes() {}

    /** The fixed delay in {@code [0, jitter)} added to every firing of {@code policy}; stable across restarts. */
    public static Duration jitterOffset(Policy policy) {
        long bound = policy.schedule().jitter().toMillis();
        return Duration.ofMillis(
                bound <= 0 ? 0 : Math.floorMod((long) policy.name().hashCode() * 0x9E3779B9L, bound));
    }

    /** The next {@code count} firings of {@code policy} if it were scheduled at {@code now}. */
    public static List<Instant> next(Policy policy, Instant now, int count) {
        return generate(policy, now, null, count);
    }

    /** Every firing of {@code policy}, scheduled at {@code now}, before {@code until}. */
    public static List<Instant> until(Policy policy, Instant now, Instant until) {
        return generate(policy, now, until, Integer.MAX_VALUE);
    }

    private static List<Instant> generate(Policy policy, Instant now, Instant until, int limit) {
        Duration offset = jitterOffset(policy);
        List<Instant> fires = new ArrayList<>();
        if (policy.schedule() instanceof Schedule.Interval interval) {
            for (Instant t = now.plus(offset);
                    fires.size() < limit && (until == null || t.isBefore(until));
                    t = t.plus(interval.every())) {
                fires.add(t);
            }
            return fires;
        }
        CronExpression cron = cron(((Schedule.Cron) policy.schedule()).expression());
        Date after = Date.from(now);
        while (fires.size() < limit) {
            Date next = cron.getNextValidTimeAfter(after);
            if (next == null) {
                break;
            }
            Instant fire = next.toInstant().plus(offset);
            if (until != null && !fire.isBefore(until)) {
                break;
            }
            fires.add(fire);
            after = next;
        }
        return fires;
    }

    private static CronExpression cron(String expression) {
        try {
            CronExpression cron = new CronExpression(expression);
            cron.setTimeZone(UTC);
            return cron;
        } catch (ParseException e) {
            throw new IllegalArgumentException("invalid cron expression '" + expression + "'", e);
        }
    }
}
