package io.tidemark.core;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Input the operator wrote cannot be used: a policy file, the engine config, a flag. Permanent
 * (retrying the same input fails the same way), and told apart from other permanent faults: the
 * command line exits 1 for it. The message names the file, line, column and key of every problem,
 * one per line.
 */
public class InvalidInputException extends PermanentException {
    private static final long serialVersionUID = 1L;

    public InvalidInputException(String message) {
        super(message);
    }

    public InvalidInputException(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * An exception listing {@code problems}, one per line.
     *
     * @throws IllegalArgumentException if {@code problems} is empty
     */
    public static InvalidInputException of(List<InputProblem> problems, Throwable cause) {
        if (problems.isEmpty()) {
            throw new IllegalArgumentException("an InvalidInputException needs at least one problem");
        }
        return new InvalidInputException(
                problems.stream().map(InputProblem::toString).collect(Collectors.joining("\n")), cause);
    }

    /** The message alone, without the class name: ready to print to a user. */
    @Override
    public String toString() {
        return getMessage();
    }
}
