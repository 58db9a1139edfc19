package io.tidemark.policies;

import java.util.Locale;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bandwidth syntax of policy and engine files: a number and a unit per second, such as {@code
 * 20MiB/s}, {@code 500KB/s} or {@code 1.5GiB/s}. KB, MB and GB are powers of 1000; KiB, MiB and
 * GiB powers of 1024; B is bytes.
 */
public final class BandwidthSyntax {
    /** How problems describe the syntax. */
    public static final String EXAMPLE = "a positive rate such as 20MiB/s or 500KB/s";

    private static final Pattern SYNTAX =
            Pattern.compile("(\\d{1,12}(?:\\.\\d{1,6})?)\\s*(B|KB|MB|GB|KiB|MiB|GiB)/s", Pattern.CASE_INSENSITIVE);

    private BandwidthSyntax() {}

    /** The bytes per second {@code text} spells, or empty when it is not a positive rate in the syntax. */
    public static OptionalLong parse(String text) {
        Matcher m = SYNTAX.matcher(text.strip());
        if (!m.matches()) {
            return OptionalLong.empty();
        }
        long bytes = (long) (Double.parseDouble(m.group(1)) * unitBytes(m.group(2)));
        return bytes > 0 ? OptionalLong.of(bytes) : OptionalLong.empty();
    }

    private static long unitBytes(String unit) {
        return switch (unit.toLowerCase(Locale.ROOT)) {
            case "kb" -> 1_000L;
            case "mb" -> 1_000_000L;
            case "gb" -> 1_000_000_000L;
            case "kib" -> 1L << 10;
            case "mib" -> 1L << 20;
            case "gib" -> 1L << 30;
            default -> 1L;
        };
    }
}
