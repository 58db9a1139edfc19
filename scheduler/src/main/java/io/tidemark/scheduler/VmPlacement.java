package io.tidemark.scheduler;

import java.util.Map;
import java.util.Objects;

/**
 * A VM and its {@link Placement}.
 *
 * @param vm the VM's name, unique across the installation
 * @param placement where it runs and its labels
 */
public record VmPlacement(String vm, Placement placement) {
    public VmPlacement {
        Objects.requireNonNull(vm, "vm");
        Objects.requireNonNull(placement, "placement");
    }

    /** The placement of {@code vm} on {@code host} with {@code labels}. */
    public static VmPlacement of(String vm, String host, Map<String, String> labels) {
        return new VmPlacement(vm, new Placement(host, labels));
    }

    public String host() {
        return placement.host();
    }

    public Map<String, String> labels() {
        return placement.labels();
    }
}
