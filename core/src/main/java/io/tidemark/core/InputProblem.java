package io.tidemark.core;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One thing wrong in a file the operator wrote (a policy, the engine config), where it is, and what
 * is wrong. {@link #toString()} gives the form compilers and CI annotators understand: {@code
 * tidemark.yaml:7:5: targets.offsite.secretKeyFlie: unknown key 'secretKeyFlie'; did you mean
 * 'secretKeyFile'?}.
 *
 * @param file the file as it was given
 * @param line 1-based line; 0 when the problem concerns the whole file
 * @param column 1-based column; 0 when {@code line} is 0
 * @param keyPath the dotted path of the key at fault ({@code schedule.interval}, {@code
 *     vms.names[1]}); empty when the problem is not about one key (a YAML syntax error)
 * @param message what is wrong and, where it helps, what would be right
 */
public record InputProblem(Path file, int line, int column, String keyPath, String message) {

    public InputProblem {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(keyPath, "keyPath");
        Objects.requireNonNull(message, "message");
        if (line < 0 || column < 0) {
            throw new IllegalArgumentException("line and column must not be negative");
        }
    }

    @Override
    public String toString() {
        return format(file, line, column, keyPath, message);
    }

    /** {@code file:line:column: keyPath: message}, leaving out what is 0 or empty. */
    public static String format(Path file, int line, int column, String keyPath, String message) {
        StringBuilder s = new StringBuilder(file.toString());
        if (line > 0) {
            s.append(':').append(line).append(':').append(column);
        }
        s.append(": ");
        if (!keyPath.isEmpty()) {
            s.append(keyPath).append(": ");
        }
        return s.append(message).toString();
    }
}
