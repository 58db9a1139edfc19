package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;
import java.util.List;

/**
 * A manual backup cannot run under a policy: no loaded policy selects the VM, or the named policy
 * does not (or does not exist). The message names the policies that do select it.
 */
public final class PolicyMismatchException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final transient List<String> selecting;

    /**
     * @param named the policy the request named, or null
     * @param selecting the policies that select the VM, sorted
     */
    public PolicyMismatchException(String vm, String named, List<String> selecting) {
        super(message(vm, named, selecting));
        this.selecting = List.copyOf(selecting);
    }

    /** The policies that select the VM, sorted. */
    public List<String> selecting() {
        return selecting;
    }

    private static String message(String vm, String named, List<String> selecting) {
        if (selecting.isEmpty()) {
            return "no policy selects VM '" + vm + "', so a backup of it has no retention, RPO or targets; add it"
                    + " to a policy's vms: selector";
        }
        return "policy '" + named + "' does not select VM '" + vm + "'; the policies that do: "
                + String.join(", ", selecting) + " (pass one of them with --policy, or none to use the first)";
    }
}
