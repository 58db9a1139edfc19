package io.tidemark.core.event;

import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Why a snapshot was taken: {@link TriggerKind#SCHEDULE}, {@link TriggerKind#HOOK} (with app,
 * commit, pipeline), {@link TriggerKind#MANUAL} or {@link TriggerKind#FAILBACK} (with site).
 * Recorded in the manifest.
 */
public record Trigger(TriggerKind kind, Map<String, String> attributes) {
    public Trigger {
        Objects.requireNonNull(kind, "kind");
        attributes = Map.copyOf(attributes);
    }

    public static Trigger schedule(String policy) {
        return new Trigger(TriggerKind.SCHEDULE, Map.of("policy", policy));
    }

    public static Trigger manual() {
        return new Trigger(TriggerKind.MANUAL, Map.of());
    }

    /** Whether the snapshot was taken for a kind of trigger. */
    public boolean is(TriggerKind k) {
        return kind.equals(k);
    }

    /** Attributes in a stable order, for display and for golden files. */
    public Map<String, String> sortedAttributes() {
        return new TreeMap<>(attributes);
    }
}
