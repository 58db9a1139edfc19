package io.tidemark.policies;

import java.util.Locale;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The size syntax of policy files: a number and a unit, such as {@code 50GiB}, {@code 500MB} or
 * {@code 1.5TiB}. KB, MB, GB and TB are powers of 1000; KiB, MiB, GiB and TiB powers of 1024; B is
 * bytes.
 */
public final class SizeSyntax {
    /** How problems describe the syntax. */
    public static final String EXAMPLE = "a positive size such as 50GiB or 500MB";

    private static final Pattern SYNTAX =
            Pattern.compile("(\\d{1,12}(?:\\.\\d{1,6})?)\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", Pattern.CASE_INSENSITIVE);

    private SizeSyntax() {}

    /** The bytes {@code text} spells, or empty when it is not a positive size in the syntax. */
    public static OptionalLong parse(String text) {
        Matcher m = SYNTAX.matcher(text.strip());
        if (!m.matches()) {
            return OptionalLong.empty();
        }
        double bytes = Double.parseDouble(m.group(1)) * unitBytes(m.group(2));
        return bytes >= 1 && bytes < Long.MAX_VALUE ? OptionalLong.of((long) bytes) : OptionalLong.empty();
    }

    /** {@code bytes} in the largest binary unit that keeps one decimal, such as {@code 1.5GiB}, for messages. */
    public static String format(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + "B" : String.format(Locale.ROOT, "%.1f%s", v, units[u]);
    }

    private static long unitBytes(String unit) {
        return switch (unit.toLowerCase(Locale.ROOT)) {
            case "kb" -> 1_000L;
            case "mb" -> 1_000_000L;
            case "gb" -> 1_000_000_000L;
            case "tb" -> 1_000_000_000_000L;
            case "kib" -> 1L << 10;
            case "mib" -> 1L << 20;
            case "gib" -> 1L << 30;
            case "tib" -> 1L << 40;
            default -> 1L;
        };
    }
}
