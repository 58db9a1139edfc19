package io.tidemark.targets;

import io.tidemark.core.Sleeper;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;

/**
 * A clock and a {@link Sleeper} in one: sleeping records the wait and, unless frozen, moves the
 * clock on by it. Nothing really sleeps.
 */
final class FakeTime extends Clock implements Sleeper {

    private final boolean frozen;
    private final List<Duration> sleeps = new ArrayList<>();
    private Instant now = Instant.parse("2026-11-24T00:00:00Z");

    private FakeTime(boolean frozen) {
        this.frozen = frozen;
    }

    /** Time that passes only by sleeping (or {@link #advance}). */
    static FakeTime advancing() {
        return new FakeTime(false);
    }

    /** Time that stands still: sleeps are recorded only, as if every caller arrived at once. */
    static FakeTime frozen() {
        return new FakeTime(true);
    }

    @Override
    public synchronized void sleep(Duration duration) {
        sleeps.add(duration);
        if (!frozen && !duration.isNegative()) {
            now = now.plus(duration);
        }
    }

    synchronized void advance(Duration duration) {
        now = now.plus(duration);
    }

    synchronized List<Duration> sleeps() {
        return List.copyOf(sleeps);
    }

    @Override
    public synchronized Instant instant() {
        return now;
    }

    @Override
    public ZoneId getZone() {
        return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
        return this;
    }
}
