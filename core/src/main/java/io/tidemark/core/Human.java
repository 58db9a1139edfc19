package io.tidemark.core;

import java.time.Duration;
import java.util.Locale;

/** Byte counts and durations for people (the CLI, the status page, logs). */
public final class Human {
    private static final long[] UNIT_SECONDS = {86_400, 3_600, 60, 1};
    private static final String[] UNIT_NAMES = {"d", "h", "m", "s"};

    private Human() {}

    /** {@code n} bytes in binary units with one decimal: {@code 512 B}, {@code 1.5 MiB}. */
    public static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /**
     * {@code d} in at most two adjacent units, truncated to whole seconds: 45s, 5m, 1h, 1h30m, 2d3h (a
     * zero unit after the first ends it: 2h, not 2h0m5s). Negative durations are 0s.
     */
    public static String duration(Duration d) {
        long s = Math.max(0, d.getSeconds());
        StringBuilder out = new StringBuilder();
        int used = 0;
        for (int i = 0; i < UNIT_SECONDS.length && used < 2; i++) {
            long n = s / UNIT_SECONDS[i];
            if (n > 0 || (i == UNIT_SECONDS.length - 1 && out.length() == 0)) {
                out.append(n).append(UNIT_NAMES[i]);
                s -= n * UNIT_SECONDS[i];
                used++;
            } else if (used > 0) {
                used++;
            }
        }
        return out.toString();
    }
}
