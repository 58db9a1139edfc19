package io.tidemark.scheduler.hook;

import java.util.Objects;
import java.util.Optional;

/**
 * One firing of a pipeline's pre-deploy hook: application {@code app} at revision {@code commit} is
 * about to be deployed by pipeline run {@code pipeline}. The three together identify the hook: the
 * same three again yield the same jobs.
 *
 * @param app the application, as named by policies' {@code triggers.pre-deploy.apps}
 * @param commit the revision being deployed
 * @param pipeline the pipeline run (an id or URL)
 * @param waitLevel how far the snapshots must get before the caller goes on; empty when nobody waits
 *     (the Kafka trigger)
 * @throws InvalidHookException if a field is empty, longer than {@link #MAX_FIELD_LENGTH} characters
 *     or holds a control character
 */
public record PreDeployHook(String app, String commit, String pipeline, Optional<WaitLevel> waitLevel) {

    /** The longest app, commit or pipeline accepted, in characters. */
    public static final int MAX_FIELD_LENGTH = 256;

    public PreDeployHook {
        check("app", app);
        check("commit", commit);
        check("pipeline", pipeline);
        Objects.requireNonNull(waitLevel, "waitLevel");
    }

    /** The same hook, waiting for {@code level}. */
    public PreDeployHook waitingFor(WaitLevel level) {
        return new PreDeployHook(app, commit, pipeline, Optional.of(level));
    }

    static void check(String field, String value) {
        if (value == null || value.isBlank()) {
            throw new InvalidHookException(field, "'" + field + "' is missing or empty");
        }
        if (value.length() > MAX_FIELD_LENGTH) {
            throw new InvalidHookException(field, "'" + field + "' is longer than " + MAX_FIELD_LENGTH + " characters");
        }
        if (value.chars().anyMatch(Character::isISOControl)) {
            throw new InvalidHookException(field, "'" + field + "' holds a control character");
        }
    }
}
