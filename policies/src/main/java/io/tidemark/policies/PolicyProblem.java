package io.tidemark.policies;

import io.tidemark.core.InputProblem;
import java.nio.file.Path;
import java.util.Objects;

/**
 * One thing wrong with a policy file, where it is, and what is wrong.
 *
 * <p>{@link #toString()} gives the form compilers and CI annotators understand: {@code
 * policies/web.yaml:4:13: schedule.interval: expected a duration such as 15m or 1h, got "15
 * minutes"}.
 *
 * @param file the file (or directory) as it was given to the parser
 * @param line 1-based line; 0 when the problem concerns the whole file (it cannot be read)
 * @param column 1-based column; 0 when {@code line} is 0
 * @param keyPath the dotted path of the key at fault, such as {@code schedule.interval} or {@code
 *     vms.names[1]}; empty when the problem is not about one key (a YAML syntax error)
 * @param message what is wrong and, where it helps, what would be right
 */
public record PolicyProblem(Path file, int line, int column, String keyPath, String message) {

    public PolicyProblem {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(keyPath, "keyPath");
        Objects.requireNonNull(message, "message");
        if (line < 0 || column < 0) {
            throw new IllegalArgumentException("line and column must not be negative");
        }
    }

    @Override
    public String toString() {
        return InputProblem.format(file, line, column, keyPath, message);
    }
}
