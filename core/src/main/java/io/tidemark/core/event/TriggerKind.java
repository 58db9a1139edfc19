package io.tidemark.core.event;

import java.util.Objects;

/**
 * Why a snapshot was taken, as a kind: {@link #SCHEDULE}, {@link #HOOK}, {@link #MANUAL} or {@link
 * #FAILBACK}. An open value rather than an enum: a manifest or event written by a newer version
 * may carry a kind this one does not know, which it keeps, shows and writes back unchanged
 * (ADR 0010). Compare with {@code equals} against the constants.
 *
 * @param spelling the kind as written in manifests and events, such as {@code hook}
 */
public record TriggerKind(String spelling) {

    /** Taken at a policy's scheduled firing. */
    public static final TriggerKind SCHEDULE = new TriggerKind("schedule");
    /** Taken for a CI/CD pre-deploy hook (attributes app, commit, pipeline). */
    public static final TriggerKind HOOK = new TriggerKind("hook");
    /** Taken on an operator's request. */
    public static final TriggerKind MANUAL = new TriggerKind("manual");
    /** Taken of a failed-over VM before it fails back (attribute site). */
    public static final TriggerKind FAILBACK = new TriggerKind("failback");

    public TriggerKind {
        Objects.requireNonNull(spelling, "spelling");
        if (spelling.isBlank()) {
            throw new IllegalArgumentException("a trigger kind needs a name, such as schedule or hook");
        }
    }

    @Override
    public String toString() {
        return spelling;
    }
}
