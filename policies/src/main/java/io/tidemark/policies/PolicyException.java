package io.tidemark.policies;

import io.tidemark.core.InvalidInputException;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Policy files that cannot be used, with every problem found in them (not just the first), in file
 * then position order. The message is one {@link PolicyProblem} per line.
 */
public final class PolicyException extends InvalidInputException {
    private static final long serialVersionUID = 1L;

    private final transient List<PolicyProblem> problems;

    /**
     * An exception listing {@code problems}.
     *
     * @throws IllegalArgumentException if {@code problems} is empty
     */
    public PolicyException(List<PolicyProblem> problems) {
        super(format(problems));
        this.problems = List.copyOf(problems);
    }

    private static String format(List<PolicyProblem> problems) {
        if (problems.isEmpty()) {
            throw new IllegalArgumentException("a PolicyException needs at least one problem");
        }
        return problems.stream().map(PolicyProblem::toString).collect(Collectors.joining("\n"));
    }

    /** The problems, at least one. */
    public List<PolicyProblem> problems() {
        return problems;
    }

    /** The problems, one per line, without the class name: ready to print to a user. */
    @Override
    public String toString() {
        return getMessage();
    }
}
