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
        List<Decision> out = new ArrayList<>();
        Set<String> vms = new TreeSet<>();
        locations.values().forEach(r -> vms.addAll(r.vms()));
        for (String vm : vms) {
            Optional<Policy> policy = policies.policies().stream()
                    .filter(p -> p.vms().matches(vm, Map.of()))
                    .findFirst();
            for (Map.Entry<String, Repository> location : locations.entrySet()) {
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
                Manifest newest = points.get(points.size() - 1);
                for (Manifest m : points) {
                    out.add(decide(
                            location.getKey(), m, newest, policy, kept, Optional.ofNullable(marks.get(m.id())), now));
                }
            }
        }
        return out;
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
            Instant now) {
        if (mark.isPresent() && mark.get().kind() == PointMark.Kind.PINNED) {
            return keep(location, m, "pinned: " + mark.get().reason());
        }
        if (policy.isEmpty()) {
            return keep(location, m, "no policy selects this VM");
        }
        if (m == newest) {
            return keep(location, m, "newest restore point");
        }
        if (kept.contains(m.capturedAt())) {
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
                mark.isPresent()
                        ? "expired: " + mark.get().reason()
                        : "beyond the retention of policy " + policy.get().name());
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
