package io.tidemark.scheduler;

import java.util.Map;
import java.util.Objects;

/**
 * Where a VM runs now, and the labels it carries.
 *
 * @param host the hypervisor host; its worker consumes {@code Topics.jobs(host)}
 * @param labels the VM's labels, matched by policy selectors
 */
public record Placement(String host, Map<String, String> labels) {
    public Placement {
        Objects.requireNonNull(host, "host");
        labels = Map.copyOf(labels);
    }
}
