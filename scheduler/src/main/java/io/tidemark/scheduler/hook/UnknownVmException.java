package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;
import java.util.List;

/** A manual backup names a VM that the engine's inventory does not know. */
public final class UnknownVmException extends PermanentException {
    private static final long serialVersionUID = 1L;

    /** How many known VMs the message names at most. */
    public static final int MAX_NAMED = 20;

    private final transient List<String> knownVms;

    /** @param knownVms the VMs the inventory knows, sorted */
    public UnknownVmException(String vm, List<String> knownVms) {
        super("the engine knows no VM '" + vm + "'; it knows " + named(knownVms)
                + " (check the name; a VM appears once the worker of its host lists it, within seconds of"
                + " its QEMU starting)");
        this.knownVms = List.copyOf(knownVms);
    }

    /** The VMs the inventory knows, sorted (all of them, not only those named in the message). */
    public List<String> knownVms() {
        return knownVms;
    }

    private static String named(List<String> vms) {
        if (vms.isEmpty()) {
            return "none";
        }
        if (vms.size() <= MAX_NAMED) {
            return String.join(", ", vms);
        }
        return String.join(", ", vms.subList(0, MAX_NAMED)) + " and " + (vms.size() - MAX_NAMED) + " more";
    }
}
