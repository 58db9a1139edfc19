package io.tidemark.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;

/** An {@link Inventory} held in memory, for the embedded mode and tests. Thread-safe. */
public final class InMemoryInventory implements Inventory {
    private final ConcurrentSkipListMap<String, VmPlacement> vms = new ConcurrentSkipListMap<>();

    /** Records that {@code vm} runs on {@code host} with {@code labels}, replacing what was known. */
    public InMemoryInventory put(String vm, String host, Map<String, String> labels) {
        return put(VmPlacement.of(vm, host, labels));
    }

    /** Records {@code placement}, replacing what was known about its VM. */
    public InMemoryInventory put(VmPlacement placement) {
        vms.put(placement.vm(), placement);
        return this;
    }

    /** Forgets {@code vm}; returns whether it was known. */
    public boolean remove(String vm) {
        return vms.remove(vm) != null;
    }

    @Override
    public Optional<Placement> locate(String vm) {
        return Optional.ofNullable(vms.get(vm)).map(VmPlacement::placement);
    }

    @Override
    public List<VmPlacement> all() {
        return List.copyOf(vms.values());
    }
}
