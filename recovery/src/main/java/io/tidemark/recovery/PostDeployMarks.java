package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.hook.PostDeployHandler;
import io.tidemark.scheduler.hook.PostDeployReport;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Applies post-deploy reports to the repositories: every pre-deploy restore point of the reported
 * deploy, at every location that holds it, is pinned (the deploy failed: keep it for {@code
 * tidemark rollback}) or expired (it succeeded: let the next prune take it).
 */
public final class PostDeployMarks implements PostDeployHandler {

    private final Map<String, Repository> locations;
    private final Clock clock;

    /** @param locations the primary repository as {@code local}, then each target's, by name */
    public PostDeployMarks(Map<String, Repository> locations, Clock clock) {
        this.locations = new LinkedHashMap<>(locations);
        this.clock = clock;
    }

    @Override
    public List<MarkedPoint> apply(PostDeployReport report) {
        boolean failed = report.outcome() == PostDeployReport.Outcome.FAILURE;
        PointMark mark = new PointMark(
                failed ? PointMark.Kind.PINNED : PointMark.Kind.EXPIRED,
                "deploy of " + report.describe() + (failed ? " failed" : " succeeded"),
                clock.instant(),
                attributes(report));
        List<MarkedPoint> marked = new ArrayList<>();
        locations.forEach((location, repository) -> {
            for (Manifest m : preDeployPoints(repository, report)) {
                repository.mark(m.vm(), m.id(), mark);
                marked.add(new MarkedPoint(location, m.vm(), m.id(), failed ? "pinned" : "expired"));
            }
        });
        if (marked.isEmpty()) {
            throw new PermanentException("no pre-deploy restore point of the deploy of " + report.describe()
                    + " in " + String.join(", ", locations.keySet())
                    + "; check --app and --commit against `tidemark list` (trigger hook app=… commit=…)");
        }
        return marked;
    }

    /** The restore points a pre-deploy hook of the reported deploy made in {@code repository}. */
    static List<Manifest> preDeployPoints(Repository repository, PostDeployReport report) {
        List<Manifest> out = new ArrayList<>();
        for (String vm : repository.vms()) {
            for (Manifest m : repository.manifests(vm)) {
                Map<String, String> a = m.trigger().attributes();
                if (m.trigger().is(TriggerKind.HOOK)
                        && report.matches(a.get("app"), a.get("commit"), a.get("pipeline"))) {
                    out.add(m);
                }
            }
        }
        return out;
    }

    private static Map<String, String> attributes(PostDeployReport report) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("app", report.app());
        a.put("commit", report.commit());
        report.pipeline().ifPresent(p -> a.put("pipeline", p));
        a.put("outcome", report.outcome().wireName());
        return a;
    }
}
