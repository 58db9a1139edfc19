package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;
import java.util.List;

/** No loaded policy lists the app of a pre-deploy hook in {@code triggers.pre-deploy.apps}. */
public final class UnknownAppException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final String app;
    private final transient List<String> knownApps;

    public UnknownAppException(String app, List<String> knownApps) {
        super("no policy lists app '" + app + "' under triggers.pre-deploy.apps; known apps: "
                + (knownApps.isEmpty() ? "none" : String.join(", ", knownApps))
                + " (add the app to a policy's triggers.pre-deploy.apps, or fix the pipeline's app name)");
        this.app = app;
        this.knownApps = List.copyOf(knownApps);
    }

    public String app() {
        return app;
    }

    /** The apps some policy lists, sorted. */
    public List<String> knownApps() {
        return knownApps;
    }
}
