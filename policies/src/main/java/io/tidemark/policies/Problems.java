package io.tidemark.policies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.nodes.Node;

/** Collects the problems of one file while it is read, so that all of them are reported at once. */
final class Problems {
    private final Path file;
    private final List<PolicyProblem> problems = new ArrayList<>();

    Problems(Path file) {
        this.file = file;
    }

    Path file() {
        return file;
    }

    void at(Node node, String keyPath, String message) {
        at(node.getStartMark(), keyPath, message);
    }

    void at(Mark mark, String keyPath, String message) {
        if (mark == null) {
            add(0, 0, keyPath, message);
        } else {
            add(mark.getLine() + 1, mark.getColumn() + 1, keyPath, message);
        }
    }

    void add(int line, int column, String keyPath, String message) {
        problems.add(new PolicyProblem(file, line, column, keyPath, message));
    }

    boolean isEmpty() {
        return problems.isEmpty();
    }

    /** The problems in position order (stable for problems at one position). */
    List<PolicyProblem> sorted() {
        List<PolicyProblem> sorted = new ArrayList<>(problems);
        sorted.sort(Comparator.comparingInt(PolicyProblem::line).thenComparingInt(PolicyProblem::column));
        return sorted;
    }
}
