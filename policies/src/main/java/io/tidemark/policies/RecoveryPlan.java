package io.tidemark.policies;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A disaster-recovery plan: which VMs to bring up at a DR site, from which target, in which order.
 * Read by {@link RecoveryPlanParser}; the language is described in {@code docs/runbooks/dr-failover.md}.
 *
 * @param file the file it was read from, for messages
 * @param site the DR site's name, for output
 * @param source the name of the engine target that holds the replicated restore points
 * @param workDir where the DR site keeps disks ({@code <work-dir>/<vm>/<disk>.raw}) and QEMU's
 *     sockets and pid files ({@code <work-dir>/run/})
 * @param homeDir where failback writes the disks at home, if the plan says
 * @param groups the boot order: every VM of a group runs before the next group starts
 */
public record RecoveryPlan(
        Path file, String site, String source, Path workDir, Optional<Path> homeDir, List<Group> groups) {

    public RecoveryPlan {
        groups = List.copyOf(groups);
    }

    /** One boot step: its VMs are restored and started in parallel. */
    public record Group(String name, List<Vm> vms) {
        public Group {
            vms = List.copyOf(vms);
        }
    }

    /**
     * One VM of the plan.
     *
     * @param memoryMiB guest memory
     * @param cpus virtual CPUs
     * @param qemuArgs extra arguments appended to QEMU's command line
     * @param consistentWith VMs whose restore points must come from the same firing as this one's
     */
    public record Vm(String name, int memoryMiB, int cpus, List<String> qemuArgs, List<String> consistentWith) {
        public Vm {
            qemuArgs = List.copyOf(qemuArgs);
            consistentWith = List.copyOf(consistentWith);
        }
    }

    /** Every VM of the plan, in boot order. */
    public List<Vm> vms() {
        return groups.stream().flatMap(g -> g.vms().stream()).toList();
    }

    /** The VM called {@code name}. */
    public Optional<Vm> vm(String name) {
        return vms().stream().filter(v -> v.name().equals(name)).findFirst();
    }
}
