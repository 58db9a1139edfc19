package io.tidemark.engine;

import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.Placement;
import io.tidemark.scheduler.VmPlacement;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The VMs this host's hypervisor runs now: what the engine's per-host roles cover (pre-deploy hooks
 * and RPO tracking, each in a consumer group per host). Scheduling routes by the compacted inventory
 * topic instead ({@link io.tidemark.scheduler.BusInventory}, ADR 0003).
 */
final class HypervisorInventory implements Inventory {

    private final String host;
    private final Hypervisor hypervisor;

    HypervisorInventory(String host, Hypervisor hypervisor) {
        this.host = host;
        this.hypervisor = hypervisor;
    }

    @Override
    public List<VmPlacement> all() {
        return hypervisor.list().stream()
                .map(VmInfo::name)
                .map(vm -> VmPlacement.of(vm, host, Map.of()))
                .toList();
    }

    @Override
    public Optional<Placement> locate(String vm) {
        return all().stream()
                .filter(p -> p.vm().equals(vm))
                .map(VmPlacement::placement)
                .findFirst();
    }
}
