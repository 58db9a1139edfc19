package io.tidemark.app;

import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.Placement;
import io.tidemark.scheduler.VmPlacement;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The inventory of a single-host engine: the VMs this host's hypervisor runs now. (A multi-host
 * deployment reads the compacted inventory topic instead.)
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
