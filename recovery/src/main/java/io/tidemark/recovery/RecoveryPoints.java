package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * Chooses the restore point each VM of a {@link RecoveryPlan} comes back from: the newest one, except
 * that VMs tied by {@code consistent-with} (directly or through each other) come from the same firing
 * — the newest firing every one of them has a point of on the target.
 *
 * <p>A firing is what one policy fire produced: the scheduler names its jobs {@code
 * <policy>/<vm>/<scheduled-epoch-millis>}, so two points are from one firing when their job ids are
 * equal once the VM's own name is taken out. Points of other triggers (manual, hook) form a firing of
 * their own.
 */
public final class RecoveryPoints {

    private RecoveryPoints() {}

    /** The firing a point belongs to. */
    static String firing(Manifest m) {
        String[] parts = m.jobId().split("/", -1);
        if (parts.length == 3 && parts[1].equals(m.vm())) {
            return parts[0] + "/" + parts[2];
        }
        return m.vm() + ":" + m.jobId();
    }

    /**
     * The point per VM of {@code plan}, in plan order.
     *
     * @param points the restore points of a VM at the source, any order
     * @throws PermanentException naming the VMs without a point, or a consistency group without a
     *     common firing
     */
    public static Map<String, Manifest> choose(RecoveryPlan plan, Function<String, List<Manifest>> points) {
        List<String> vms = plan.vms().stream().map(RecoveryPlan.Vm::name).toList();
        Map<String, List<Manifest>> byVm = new LinkedHashMap<>();
        List<String> missing = new ArrayList<>();
        for (String vm : vms) {
            List<Manifest> list = points.apply(vm);
            if (list.isEmpty()) {
                missing.add(vm);
            }
            byVm.put(vm, list);
        }
        if (!missing.isEmpty()) {
            throw new PermanentException("no restore point of " + String.join(", ", missing) + " at the source target '"
                    + plan.source() + "' of plan " + plan.file()
                    + "; check that replication to it runs (`tidemark status`)");
        }
        Map<String, Manifest> chosen = new LinkedHashMap<>();
        for (Set<String> set : consistencySets(plan)) {
            if (set.size() == 1) {
                String vm = set.iterator().next();
                chosen.put(vm, newest(byVm.get(vm)));
                continue;
            }
            chosen.putAll(newestCommonFiring(set, byVm, plan));
        }
        Map<String, Manifest> ordered = new LinkedHashMap<>();
        vms.forEach(vm -> ordered.put(vm, chosen.get(vm)));
        return ordered;
    }

    /** The VMs tied by consistent-with, transitively; a VM tied to none is a set of its own. */
    static List<Set<String>> consistencySets(RecoveryPlan plan) {
        Map<String, String> parent = new HashMap<>();
        plan.vms().forEach(v -> parent.put(v.name(), v.name()));
        for (RecoveryPlan.Vm v : plan.vms()) {
            for (String other : v.consistentWith()) {
                parent.put(root(parent, v.name()), root(parent, other));
            }
        }
        Map<String, Set<String>> sets = new LinkedHashMap<>();
        plan.vms().forEach(v -> sets.computeIfAbsent(root(parent, v.name()), r -> new LinkedHashSet<>())
                .add(v.name()));
        return List.copyOf(sets.values());
    }

    private static String root(Map<String, String> parent, String vm) {
        String r = vm;
        while (!parent.get(r).equals(r)) {
            r = parent.get(r);
        }
        return r;
    }

    private static Manifest newest(List<Manifest> points) {
        return points.stream()
                .max(Comparator.comparing(Manifest::capturedAt).thenComparing(Manifest::id))
                .orElseThrow();
    }

    private static Map<String, Manifest> newestCommonFiring(
            Set<String> set, Map<String, List<Manifest>> byVm, RecoveryPlan plan) {
        Map<String, Map<String, Manifest>> byFiring = new HashMap<>();
        for (String vm : set) {
            for (Manifest m : byVm.get(vm)) {
                byFiring.computeIfAbsent(firing(m), f -> new HashMap<>())
                        .merge(vm, m, (a, b) -> a.id().compareTo(b.id()) >= 0 ? a : b);
            }
        }
        Optional<Map<String, Manifest>> best = byFiring.values().stream()
                .filter(points -> points.keySet().containsAll(set))
                .max(Comparator.comparing(points -> points.values().stream()
                        .map(Manifest::capturedAt)
                        .max(Comparator.naturalOrder())
                        .orElseThrow()));
        return best.orElseThrow(() -> new PermanentException("VMs " + String.join(", ", set)
                + " must be restored consistently (consistent-with in " + plan.file()
                + "), but no firing has a restore point of every one of them at '" + plan.source()
                + "'; wait for the next firing to replicate, or drop consistent-with to accept mixed points"));
    }
}
