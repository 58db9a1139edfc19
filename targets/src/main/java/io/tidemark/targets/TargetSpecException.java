package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * The settings of a target are inconsistent or incomplete: every problem found, each with the key
 * it concerns, so that the engine config can report each at its place in the file.
 */
public final class TargetSpecException extends PermanentException {
    private static final long serialVersionUID = 1L;

    /**
     * One problem.
     *
     * @param key the setting at fault ({@code bucket}, {@code objectLockDays}); {@code null} when it
     *     concerns the target as a whole (a required setting is missing)
     * @param message what is wrong and what would be right
     */
    public record Problem(String key, String message) {
        public Problem {
            Objects.requireNonNull(message, "message");
        }

        @Override
        public String toString() {
            return key == null ? message : key + ": " + message;
        }
    }

    private final transient List<Problem> problems;

    TargetSpecException(List<Problem> problems) {
        super(problems.stream().map(Problem::toString).collect(Collectors.joining("; ")));
        this.problems = List.copyOf(problems);
    }

    /** Every problem, in the order found. */
    public List<Problem> problems() {
        return problems;
    }

    /** Collects the problems of one spec; {@link #check()} throws when there are any. */
    static final class Collector {
        private final List<Problem> problems = new ArrayList<>();

        /** A problem with {@code key} ({@code null}: the whole target). */
        void add(String key, String message) {
            problems.add(new Problem(key, message));
        }

        /** The problems of {@code e}, or {@code e}'s message as one about {@code key}. */
        void add(String key, PermanentException e) {
            if (e instanceof TargetSpecException t) {
                problems.addAll(t.problems());
            } else {
                add(key, e.getMessage());
            }
        }

        /** @throws TargetSpecException with every problem collected, if there is one */
        void check() {
            if (!problems.isEmpty()) {
                throw new TargetSpecException(problems);
            }
        }
    }
}
