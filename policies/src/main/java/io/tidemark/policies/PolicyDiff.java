package io.tidemark.policies;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * How one policy set differs from another, by policy name: added, removed, and changed with the keys
 * (as spelled in policy files) whose values differ. The file a policy was read from is not compared.
 *
 * @param added names of policies only in the new set, sorted
 * @param removed names of policies only in the old set, sorted
 * @param changed per policy in both sets whose content differs, the changed keys in file order
 */
public record PolicyDiff(List<String> added, List<String> removed, Map<String, List<String>> changed) {

    private static final Map<String, Function<Policy, Object>> KEYS = keys();

    public PolicyDiff {
        added = List.copyOf(added);
        removed = List.copyOf(removed);
        changed = Collections.unmodifiableMap(new LinkedHashMap<>(changed));
    }

    /** What changed from {@code previous} to {@code next}. */
    public static PolicyDiff between(PolicySet previous, PolicySet next) {
        List<String> added = new ArrayList<>();
        List<String> removed = new ArrayList<>();
        Map<String, List<String>> changed = new LinkedHashMap<>();
        for (Policy p : next.policies()) {
            Optional<Policy> old = previous.find(p.name());
            if (old.isEmpty()) {
                added.add(p.name());
                continue;
            }
            List<String> keys = new ArrayList<>();
            KEYS.forEach((key, value) -> {
                if (!Objects.equals(value.apply(old.get()), value.apply(p))) {
                    keys.add(key);
                }
            });
            if (!keys.isEmpty()) {
                changed.put(p.name(), keys);
            }
        }
        for (Policy p : previous.policies()) {
            if (next.find(p.name()).isEmpty()) {
                removed.add(p.name());
            }
        }
        return new PolicyDiff(added, removed, changed);
    }

    /** True when both sets hold the same policies with the same content. */
    public boolean isEmpty() {
        return added.isEmpty() && removed.isEmpty() && changed.isEmpty();
    }

    private static Map<String, Function<Policy, Object>> keys() {
        Map<String, Function<Policy, Object>> keys = new LinkedHashMap<>();
        keys.put("vms", Policy::vms);
        keys.put("schedule", Policy::schedule);
        keys.put("consistency", Policy::consistency);
        keys.put("rpo", Policy::rpo);
        keys.put("rto", Policy::rto);
        keys.put("full-every", Policy::fullEvery);
        keys.put("targets", p -> List.of(p.targets(), p.targetRpos()));
        keys.put("retention", Policy::retention);
        keys.put("triggers", Policy::preDeployApps);
        keys.put("qos", Policy::qos);
        keys.put("budget", Policy::budgets);
        keys.put("tiers", Policy::tiers);
        return Collections.unmodifiableMap(keys);
    }
}
