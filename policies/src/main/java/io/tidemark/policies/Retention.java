package io.tidemark.policies;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.time.temporal.IsoFields;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;

/**
 * Grandfather-father-son retention for one location: keep the newest {@code last} restore points,
 * plus the newest point of each of the newest {@code hourly} hours, {@code daily} days, {@code
 * weekly} ISO weeks, {@code monthly} months and {@code yearly} years that have one (UTC). A point
 * kept by any rule is kept. All zero keeps everything — the absence of a rule never deletes.
 */
public record Retention(int last, int hourly, int daily, int weekly, int monthly, int yearly) {

    public Retention {
        if (last < 0 || hourly < 0 || daily < 0 || weekly < 0 || monthly < 0 || yearly < 0) {
            throw new IllegalArgumentException("retention counts must not be negative");
        }
    }

    /** Keeps every restore point. */
    public static Retention keepAll() {
        return new Retention(0, 0, 0, 0, 0, 0);
    }

    public boolean keepsAll() {
        return last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0;
    }

    /** The capture times of {@code points} this rule keeps. */
    public Set<Instant> keep(List<Instant> points) {
        List<Instant> newestFirst =
                points.stream().sorted(Comparator.reverseOrder()).toList();
        if (keepsAll()) {
            return new LinkedHashSet<>(newestFirst);
        }
        Set<Instant> kept = new LinkedHashSet<>(newestFirst.subList(0, Math.min(last, newestFirst.size())));
        bucket(newestFirst, hourly, t -> t.truncatedTo(ChronoUnit.HOURS), kept);
        bucket(newestFirst, daily, t -> t.truncatedTo(ChronoUnit.DAYS), kept);
        bucket(
                newestFirst,
                weekly,
                t -> t.getLong(IsoFields.WEEK_BASED_YEAR) * 100 + t.get(IsoFields.WEEK_OF_WEEK_BASED_YEAR),
                kept);
        bucket(newestFirst, monthly, t -> t.getYear() * 100L + t.getMonthValue(), kept);
        bucket(newestFirst, yearly, t -> (long) t.getYear(), kept);
        return kept;
    }

    private static void bucket(
            List<Instant> newestFirst, int count, Function<ZonedDateTime, Object> bucketOf, Set<Instant> kept) {
        Object previous = null;
        int taken = 0;
        for (Instant t : newestFirst) {
            if (taken >= count) {
                return;
            }
            Object b = bucketOf.apply(t.atZone(ZoneOffset.UTC));
            if (!b.equals(previous)) {
                kept.add(t);
                taken++;
                previous = b;
            }
        }
    }
}
