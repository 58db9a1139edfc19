package io.tidemark.app;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.RpoTracker;
import java.util.Map;

/** Teaches an {@link RpoTracker} the newest restore point of every VM at every location. */
final class RpoSources {

    private RpoSources() {}

    /** @param locations the primary repository as {@code local}, and each target's by name */
    static void seed(RpoTracker tracker, Map<String, Repository> locations) {
        locations.forEach((name, repo) -> seed(tracker, name, repo));
    }

    /** The primary as {@code local}, then the repositories the targets hold (empty targets left out). */
    static Map<String, Repository> locations(Repository primary, Map<String, ObjectTarget> targets) {
        Map<String, Repository> out = new java.util.LinkedHashMap<>();
        out.put(RpoTracker.LOCAL, primary);
        out.putAll(Targets.repositories(primary, targets));
        return out;
    }

    private static void seed(RpoTracker tracker, String location, Repository repo) {
        for (String vm : repo.vms()) {
            repo.latest(vm).map(Manifest::capturedAt).ifPresent(at -> tracker.record(vm, location, at));
        }
    }
}
