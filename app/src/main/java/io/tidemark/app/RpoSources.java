package io.tidemark.app;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.RpoTracker;
import java.util.Map;

/** Teaches an {@link RpoTracker} the newest restore point of every VM at every location. */
final class RpoSources {

    private RpoSources() {}

    static void seed(RpoTracker tracker, Repository primary, Map<String, ObjectTarget> targets) {
        seed(tracker, RpoTracker.LOCAL, primary);
        targets.forEach((name, target) -> {
            if (target.exists(ObjectKeys.CONFIG)) { // an empty target has no points yet
                seed(tracker, name, Repository.open(target));
            }
        });
    }

    private static void seed(RpoTracker tracker, String location, Repository repo) {
        for (String vm : repo.vms()) {
            repo.latest(vm).map(Manifest::capturedAt).ifPresent(at -> tracker.record(vm, location, at));
        }
    }
}
