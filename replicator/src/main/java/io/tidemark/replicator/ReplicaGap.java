package io.tidemark.replicator;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Which restore points of one VM a target should hold and does not: what the reconciliation ships
 * and what {@code status} and the metrics count as missing. A target should hold the points of a VM
 * whose policy names it that its own retention keeps when it looks at the primary's points (the
 * same rule prune applies there, so a point prune removed on purpose is not shipped again), plus
 * the newest point and every pinned one. Changes nothing; reads nothing.
 */
public final class ReplicaGap {

    private ReplicaGap() {}

    /**
     * The policy that governs {@code vm}: the one its newest restore point names, if it still
     * exists, else the first that selects it by name (as prune chooses).
     *
     * @param points the VM's restore points on the primary, oldest first
     */
    public static Optional<Policy> policyFor(PolicySet policies, String vm, List<Manifest> points) {
        if (!points.isEmpty()) {
            Optional<Policy> named = policies.find(points.get(points.size() - 1).policy());
            if (named.isPresent()) {
                return named;
            }
        }
        return policies.policies().stream()
                .filter(p -> p.vms().matches(vm, Map.of()))
                .findFirst();
    }

    /**
     * The points of {@code vm} that {@code target} lacks, oldest first (so a parent goes before its
     * incrementals).
     *
     * @param points the VM's restore points on the primary, oldest first
     * @param marks the primary's marks of the VM's points, by restore point id
     * @param onTarget the ids of the VM's restore points the target holds
     */
    public static List<Manifest> missing(
            PolicySet policies,
            String target,
            String vm,
            List<Manifest> points,
            Map<String, PointMark> marks,
            Set<String> onTarget) {
        if (points.isEmpty()) {
            return List.of();
        }
        Optional<Policy> policy = policyFor(policies, vm, points);
        if (policy.isEmpty() || !policy.get().targets().contains(target)) {
            return List.of();
        }
        Set<Instant> kept = policy.get()
                .retentionAt(target)
                .keep(points.stream()
                        .filter(m -> !hasMark(marks, m, PointMark.Kind.EXPIRED))
                        .map(Manifest::capturedAt)
                        .toList());
        Manifest newest = points.get(points.size() - 1);
        List<Manifest> out = new ArrayList<>();
        for (Manifest m : points) {
            boolean wanted = m == newest || kept.contains(m.capturedAt()) || hasMark(marks, m, PointMark.Kind.PINNED);
            if (wanted && !onTarget.contains(m.id())) {
                out.add(m);
            }
        }
        return out;
    }

    private static boolean hasMark(Map<String, PointMark> marks, Manifest m, PointMark.Kind kind) {
        PointMark mark = marks.get(m.id());
        return mark != null && mark.kind() == kind;
    }
}
