package io.tidemark.app;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.RpoTracker;
import java.util.Map;

/** Teaches an {@link RpoTracker} the newest restore point of every VM at every location. */
final class RpoSources {

    private RpoSources() {}

    static void seed(RpoTracker tracker, Repository primary, Map<String, ObjectTarget> targets) {
        seed(tracker, RpoTracker.LOCAL, primary);
        Targets.repositories(primary, targets).forEach((name, repo) -> seed(tracker, name, repo));
    }

    private static void seed(RpoTracker tracker, String location, Repository repo) {
        for (String vm : repo.vms()) {
            repo.latest(vm).map(Manifest::capturedAt).ifPresent(at -> tracker.record(vm, location, at));
        }
    }
}
