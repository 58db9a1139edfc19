package io.tidemark.core.event;

import java.util.Objects;

/**
 * The worker on {@code host} no longer sees {@code vm}, which it reported with {@link VmPlaced}
 * before (the VM stopped, was deleted or migrated away). It withdraws only that host's claim: a
 * placement of the VM on another host stands.
 */
public record VmGone(String vm, String host) implements EventPayload {
    public VmGone {
        Objects.requireNonNull(vm, "vm");
        Objects.requireNonNull(host, "host");
    }
}
