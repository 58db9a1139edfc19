package io.tidemark.replicator;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.Repository;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;

/**
 * Applies each policy's retention at each location ({@code local} and every target): decides which
 * restore points to keep, and removes the manifests of the others. Never removes: the newest point
 * of a VM at a location; a local point that has not yet reached every target its policy requires;
 * a point whose manifest is under an immutability lock; a pinned point (a failed deploy's pre-deploy
 * point); anything of a VM no policy selects. An expired point (a successful deploy's pre-deploy
 * point) does not count for the retention rule. Only
 * manifests are removed: the chunks they alone referenced are reclaimed by garbage collection.
 *
 * <p>A policy's capacity budget at a location ({@code budget:}) overrides its retention rule there,
 * never the protections above: while the VM's kept points occupy more than the budget ({@link
 * BudgetUsage}), the oldest point that only the retention rule keeps goes too. When the points that
 * stay still exceed the budget, the plan says so ({@link Plan#overBudget()}): the newest point did
 * not fit. Every point is logically full (restore never reads a parent), so removing any point's
 * manifest leaves every other point whole.
 */
public final class Pruner {

    /** The location name of the primary repository. */
    public static final String LOCAL = "local";

    /** Tells when an object at a location is locked against deletion, if it is. */
    @FunctionalInterface
    public interface Locks {
        Optional<Instant> retainUntil(String location, String key);

        Locks NONE = (location, key) -> Optional.empty();
    }

    /** What prune decided for one restore point at one location. */
    public record Decision(
            String location, String vm, String restorePointId, Instant capturedAt, boolean keep, String reason) {}

    private final Map<String, Repository> locations;
    private final Locks locks;

    /**
     * @param primary the local repository
     * @param targets opened target repositories by name (a target with no repository yet is left out)
     */
    public Pruner(Repository primary, Map<String, Repository> targets, Locks locks) {
        this.locations = new LinkedHashMap<>();
        this.locations.put(LOCAL, primary);
        this.locations.putAll(targets);
        this.locks = locks;
    }

    /** Decides, for every restore point at every location, whether it stays. Changes nothing. */
    public List<Decision> plan(PolicySet policies, Instant now) {
        return review(policies, now).decisions();
    }

    /**
     * A VM whose kept points at a location exceed its policy's budget there, even after prune.
     *
     * @param usedBytes what the kept points occupy ({@link BudgetUsage})
     * @param neededBytes what the newest point occupies that no other kept point shares
     * @param fullPointBytes what the newest point alone occupies: one full point
     * @param held why the kept points stay, as counts of the reasons
     */
    public record OverBudget(
            String location,
            String vm,
            String policy,
            long budgetBytes,
            long usedBytes,
            long neededBytes,
            long fullPointBytes,
            String newestPointId,
            String held) {}

    /**
     * A VM's usage of its budget at a location after the plan, for every VM whose policy sets one
     * there.
     */
    public record BudgetUse(String location, String vm, String policy, long budgetBytes, long usedBytes) {}

    /**
     * What prune decided, and where the budgets stand after it.
     *
     * @param decisions per restore point at every location
     * @param budgets per VM and location with a budget: its use once the plan is applied
     * @param overBudget the VMs whose kept points still exceed their budget
     */
    public record Plan(List<Decision> decisions, List<BudgetUse> budgets, List<OverBudget> overBudget) {
        public Plan {
            decisions = List.copyOf(decisions);
            budgets = List.copyOf(budgets);
            overBudget = List.copyOf(overBudget);
        }
    }

    /** As {@link #plan}, with the budgets' use and the VMs over budget. Changes nothing. */
    public Plan review(PolicySet policies, Instant now) {
        return review(policies, now, false);
    }

    /**
     * As {@link #review}, for the VMs and locations that have a budget only: what a budget watch
     * needs, without reading the manifests of the others.
     */
    public Plan reviewBudgets(PolicySet policies, Instant now) {
        return review(policies, now, true);
    }

    private Plan review(PolicySet policies, Instant now, boolean budgetedOnly) {
        List<Decision> out = new ArrayList<>();
        List<BudgetUse> budgets = new ArrayList<>();
        List<OverBudget> overBudget = new ArrayList<>();
        Set<String> vms = new TreeSet<>();
        locations.values().forEach(r -> vms.addAll(r.vms()));
        for (String vm : vms) {
            Optional<Policy> policy = policies.policies().stream()
                    .filter(p -> p.vms().matches(vm, Map.of()))
                    .findFirst();
            for (Map.Entry<String, Repository> location : locations.entrySet()) {
                if (budgetedOnly
                        && policy.map(p -> p.budgetAt(location.getKey()).isEmpty())
                                .orElse(true)) {
                    continue;
                }
                List<Manifest> points = location.getValue().manifests(vm);
                if (points.isEmpty()) {
                    continue;
                }
                Map<String, PointMark> marks = location.getValue().marks(vm);
                // an expired point does not count for the retention rule: it must not hold a slot
                Set<Instant> kept = policy.map(p -> p.retentionAt(location.getKey()))
                        .map(r -> r.keep(points.stream()
                                .filter(m -> !marked(marks, m, PointMark.Kind.EXPIRED))
                                .map(Manifest::capturedAt)
                                .toList()))
                        .orElse(null);
                if (kept != null) { // a point past its last tier at this location expires (ADR 20)
                    policy.get()
                            .tiers()
                            .expiresAt(location.getKey())
                            .ifPresent(end -> kept.removeIf(t -> !t.plus(end).isAfter(now)));
                }
                Manifest newest = points.get(points.size() - 1);
                List<Decision> decisions = new ArrayList<>();
                for (Manifest m : points) {
                    decisions.add(decide(
                            location.getKey(),
                            m,
                            newest,
                            policy,
                            kept,
                            Optional.ofNullable(marks.get(m.id())),
                            now,
                            Optional.empty()));
                }
                OptionalLong budget =
                        policy.map(p -> p.budgetAt(location.getKey())).orElse(OptionalLong.empty());
                if (budget.isPresent()) {
                    BudgetUsage usage = new BudgetUsage(location.getValue());
                    for (int i = 0; i < points.size(); i++) {
                        if (decisions.get(i).keep()) {
                            usage.add(points.get(i));
                        }
                    }
                    String overReason =
                            "over the budget of policy " + policy.get().name() + " at " + location.getKey() + " ("
                                    + budget.getAsLong() + " bytes), oldest first";
                    // the oldest first: a point that only the retention rule keeps goes while the budget is exceeded
                    for (int i = 0; i < points.size() && usage.bytes() > budget.getAsLong(); i++) {
                        Manifest m = points.get(i);
                        if (!decisions.get(i).keep()) {
                            continue;
                        }
                        Decision without = decide(
                                location.getKey(),
                                m,
                                newest,
                                policy,
                                kept,
                                Optional.ofNullable(marks.get(m.id())),
                                now,
                                Optional.of(overReason));
                        if (!without.keep()) {
                            usage.remove(m);
                            decisions.set(i, without);
                        }
                    }
                    budgets.add(new BudgetUse(
                            location.getKey(), vm, policy.get().name(), budget.getAsLong(), usage.bytes()));
                    if (usage.bytes() > budget.getAsLong()) {
                        overBudget.add(new OverBudget(
                                location.getKey(),
                                vm,
                                policy.get().name(),
                                budget.getAsLong(),
                                usage.bytes(),
                                usage.own(newest),
                                usage.alone(newest),
                                newest.id(),
                                held(decisions)));
                    }
                }
                out.addAll(decisions);
            }
        }
        return new Plan(out, budgets, overBudget);
    }

    /** Why the kept points stay, as counts of their reasons: {@code 2 pinned: …; 1 newest restore point}. */
    private static String held(List<Decision> decisions) {
        Map<String, Integer> reasons = new LinkedHashMap<>();
        for (int i = decisions.size() - 1; i >= 0; i--) {
            if (decisions.get(i).keep()) {
                reasons.merge(decisions.get(i).reason(), 1, Integer::sum);
            }
        }
        List<String> parts = new ArrayList<>();
        reasons.forEach((reason, n) -> parts.add(n + " " + reason));
        return String.join("; ", parts);
    }

    private static boolean marked(Map<String, PointMark> marks, Manifest m, PointMark.Kind kind) {
        PointMark mark = marks.get(m.id());
        return mark != null && mark.kind() == kind;
    }

    private Decision decide(
            String location,
            Manifest m,
            Manifest newest,
            Optional<Policy> policy,
            Set<Instant> kept,
            Optional<PointMark> mark,
            Instant now,
            Optional<String> overBudget) {
        if (mark.isPresent() && mark.get().kind() == PointMark.Kind.PINNED) {
            return keep(location, m, "pinned: " + mark.get().reason());
        }
        if (policy.isEmpty()) {
            return keep(location, m, "no policy selects this VM");
        }
        if (m == newest) {
            return keep(location, m, "newest restore point");
        }
        if (kept.contains(m.capturedAt()) && overBudget.isEmpty()) {
            return keep(location, m, "retention of policy " + policy.get().name());
        }
        if (location.equals(LOCAL)) {
            for (String target : policy.get().targets()) {
                Repository there = locations.get(target);
                if (there == null || !there.hasManifest(m.vm(), m.id())) {
                    return keep(location, m, "not yet replicated to " + target);
                }
            }
        }
        Optional<Instant> lockedUntil = locks.retainUntil(location, ObjectKeys.manifest(m.vm(), m.id()));
        if (lockedUntil.isPresent() && lockedUntil.get().isAfter(now)) {
            return keep(location, m, "locked until " + lockedUntil.get());
        }
        return new Decision(
                location,
                m.vm(),
                m.id(),
                m.capturedAt(),
                false,
                overBudget.orElseGet(() -> mark.isPresent()
                        ? "expired: " + mark.get().reason()
                        : "beyond the retention of policy " + policy.get().name()));
    }

    private static Decision keep(String location, Manifest m, String reason) {
        return new Decision(location, m.vm(), m.id(), m.capturedAt(), true, reason);
    }

    /** Removes the manifests {@code decisions} do not keep; returns how many were removed. */
    public int apply(List<Decision> decisions) {
        int removed = 0;
        for (Decision d : decisions) {
            if (!d.keep()) {
                locations.get(d.location()).target().delete(ObjectKeys.manifest(d.vm(), d.restorePointId()));
                removed++;
            }
        }
        return removed;
    }
}
