package io.tidemark.policies;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * An immutable set of policies with unique names, in name order.
 *
 * @param policies the policies, sorted by name
 */
public record PolicySet(List<Policy> policies) {

    /**
     * Sorts {@code policies} by name.
     *
     * @throws IllegalArgumentException if two policies share a name
     */
    public PolicySet {
        List<Policy> sorted = new ArrayList<>(policies);
        sorted.sort(Comparator.comparing(Policy::name));
        Set<String> seen = new HashSet<>();
        for (Policy p : sorted) {
            if (!seen.add(p.name())) {
                throw new IllegalArgumentException("duplicate policy name: " + p.name());
            }
        }
        policies = List.copyOf(sorted);
    }

    /**
     * The set of {@code policies}.
     *
     * @throws IllegalArgumentException if two share a name
     */
    public static PolicySet of(Collection<Policy> policies) {
        return new PolicySet(List.copyOf(policies));
    }

    /**
     * The set of {@code policies}.
     *
     * @throws IllegalArgumentException if two share a name
     */
    public static PolicySet of(Policy... policies) {
        return new PolicySet(List.of(policies));
    }

    /** The empty set. */
    public static PolicySet empty() {
        return new PolicySet(List.of());
    }

    /** The policy called {@code name}, if any. */
    public Optional<Policy> find(String name) {
        return policies.stream().filter(p -> p.name().equals(name)).findFirst();
    }

    /** The policy names, sorted. */
    public List<String> names() {
        return policies.stream().map(Policy::name).toList();
    }

    /**
     * The policies the scheduler fires and the RPO tracker measures by restore points: all but the
     * continuous ones ({@code mode: continuous} takes no snapshots; its lag is the mirror's, ADR 19).
     */
    public PolicySet scheduled() {
        return new PolicySet(policies.stream().filter(p -> !p.isContinuous()).toList());
    }

    /** The continuous policies ({@code mode: continuous}), in name order. */
    public List<Policy> continuous() {
        return policies.stream().filter(Policy::isContinuous).toList();
    }

    public int size() {
        return policies.size();
    }

    public boolean isEmpty() {
        return policies.isEmpty();
    }
}
