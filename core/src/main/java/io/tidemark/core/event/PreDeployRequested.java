package io.tidemark.core.event;

import java.util.Objects;

/**
 * An external request, on {@code tidemark.triggers}, to snapshot the VMs of {@code app} before it
 * is deployed: the Kafka entry point of the pre-deploy hook. Handling it twice yields one set of
 * restore points: the jobs it causes are identified by (app, commit, pipeline, VM). Nobody waits for
 * the outcome on this path; the jobs' own events report it.
 *
 * @param app the application about to be deployed, as named by policies' {@code
 *     triggers.pre-deploy.apps}
 * @param commit the revision being deployed (a git SHA, a tag)
 * @param pipeline the pipeline run that deploys it (its id or URL)
 */
public record PreDeployRequested(String app, String commit, String pipeline) implements EventPayload {
    public PreDeployRequested {
        Objects.requireNonNull(app, "app");
        Objects.requireNonNull(commit, "commit");
        Objects.requireNonNull(pipeline, "pipeline");
    }

    /** Empty: the request is about an application, whose VMs the policies decide. */
    @Override
    public String vm() {
        return "";
    }
}
