package io.tidemark.scheduler.hook;

import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * A pipeline's report after deploying {@code app} at {@code commit}: the pre-deploy restore points
 * of that deploy are pinned when it failed (kept for a rollback) and expired when it succeeded.
 *
 * @param app the application, as in the pre-deploy hook
 * @param commit the revision that was deployed
 * @param pipeline the pipeline run, when only the points of that run are meant; empty for every run
 *     that deployed {@code commit}
 * @param outcome how the deploy ended
 * @throws InvalidHookException if a field is empty, too long or holds a control character
 */
public record PostDeployReport(String app, String commit, Optional<String> pipeline, Outcome outcome) {

    /** How a deploy ended. */
    public enum Outcome {
        SUCCESS,
        FAILURE;

        /** The spelling on the wire and the command line: {@code success} or {@code failure}. */
        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Optional<Outcome> parse(String text) {
            return Arrays.stream(values())
                    .filter(o -> o.wireName().equals(text))
                    .findFirst();
        }
    }

    public PostDeployReport {
        PreDeployHook.check("app", app);
        PreDeployHook.check("commit", commit);
        Objects.requireNonNull(pipeline, "pipeline");
        pipeline.ifPresent(p -> PreDeployHook.check("pipeline", p));
        Objects.requireNonNull(outcome, "outcome");
    }

    /** Whether a pre-deploy point with these trigger attributes belongs to this deploy. */
    public boolean matches(String pointApp, String pointCommit, String pointPipeline) {
        return app.equals(pointApp)
                && commit.equals(pointCommit)
                && pipeline.map(p -> p.equals(pointPipeline)).orElse(true);
    }

    /** The deploy in words, for marks and messages: {@code shop 4f2a9c1 (pipeline build-118)}. */
    public String describe() {
        return app + " " + commit + pipeline.map(p -> " (pipeline " + p + ")").orElse("");
    }
}
