package io.tidemark.core.event;

import java.util.Map;
import java.util.TreeMap;

/**
 * Why a snapshot was taken: {@code schedule}, {@code hook} (with app, commit, pipeline) or
 * {@code manual}. Recorded in the manifest.
 */
public record Trigger(String kind, Map<String, String> attributes) {
    public Trigger {
        attributes = Map.copyOf(attributes);
    }

    public static Trigger schedule(String policy) {
        return new Trigger("schedule", Map.of("policy", policy));
    }

    public static Trigger manual() {
        return new Trigger("manual", Map.of());
    }

    /** Attributes in a stable order, for display and for golden files. */
    public Map<String, String> sortedAttributes() {
        return new TreeMap<>(attributes);
    }
}
