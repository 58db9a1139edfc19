package io.tidemark.policies;

import java.time.Duration;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The duration syntax of policy files: one or more of {@code <n>d}, {@code <n>h}, {@code <n>m},
 * {@code <n>s} in that order, such as {@code 30s}, {@code 15m}, {@code 1h30m} or {@code 7d}.
 */
final class DurationSyntax {
    static final String EXAMPLE = "a duration such as 15m or 1h";

    private static final Pattern SYNTAX = Pattern.compile("(?:(\\d+)d)?(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?");
    private static final long[] UNIT_SECONDS = {86_400, 3_600, 60, 1};
    private static final String[] UNIT_NAMES = {"d", "h", "m", "s"};

    private DurationSyntax() {}

    /** The duration {@code text} spells, or empty if it is not in the syntax or too large. */
    static Optional<Duration> parse(String text) {
        Matcher m = SYNTAX.matcher(text);
        if (text.isEmpty() || !m.matches()) {
            return Optional.empty();
        }
        long seconds = 0;
        try {
            for (int i = 0; i < UNIT_SECONDS.length; i++) {
                String digits = m.group(i + 1);
                if (digits != null) {
                    seconds = Math.addExact(seconds, Math.multiplyExact(Long.parseLong(digits), UNIT_SECONDS[i]));
                }
            }
        } catch (NumberFormatException | ArithmeticException tooLarge) {
            return Optional.empty();
        }
        return Optional.of(Duration.ofSeconds(seconds));
    }

    /** {@code duration} in the policy syntax, whole seconds, such as {@code 1h30m}; zero is {@code 0s}. */
    static String format(Duration duration) {
        long seconds = duration.getSeconds();
        if (seconds == 0) {
            return "0s";
        }
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < UNIT_SECONDS.length; i++) {
            long n = seconds / UNIT_SECONDS[i];
            if (n > 0) {
                s.append(n).append(UNIT_NAMES[i]);
                seconds -= n * UNIT_SECONDS[i];
            }
        }
        return s.toString();
    }
}
