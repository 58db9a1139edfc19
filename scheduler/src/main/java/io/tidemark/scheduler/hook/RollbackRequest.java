package io.tidemark.scheduler.hook;

import java.util.List;
import java.util.Objects;

/**
 * A request to return the VMs of {@code app} on the engine's host to the restore points their
 * pre-deploy hook took before {@code commit} was deployed.
 *
 * @param app the application, as in the pre-deploy hook
 * @param commit the revision whose pre-deploy points to return to (an abbreviated SHA of at least
 *     4 characters is enough when it is unambiguous)
 * @param vms only these VMs; empty for every VM of the host that has such a point
 * @throws InvalidHookException if a field is empty, too long or holds a control character
 */
public record RollbackRequest(String app, String commit, List<String> vms) {
    public RollbackRequest {
        PreDeployHook.check("app", app);
        PreDeployHook.check("commit", commit);
        vms = List.copyOf(vms);
        vms.forEach(vm -> PreDeployHook.check("vms", vm));
        Objects.requireNonNull(vms, "vms");
    }
}
