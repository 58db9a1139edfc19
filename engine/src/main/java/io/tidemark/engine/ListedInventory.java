package io.tidemark.engine;

import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.Placement;
import io.tidemark.scheduler.VmPlacement;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The last listing of another {@link Inventory}, answered from memory: {@link #refresh()} reads the
 * delegate (a hypervisor listing asks every VM's monitor, so it may be slow) on a background thread,
 * and {@link #all()} and {@link #locate} return what it read. Pre-deploy hooks and the RPO tracker
 * read the engine's own VMs through it, so neither waits for a VM that does not answer.
 */
final class ListedInventory implements Inventory {

    private final Inventory delegate;
    private volatile List<VmPlacement> last = List.of();

    ListedInventory(Inventory delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** Reads the delegate; a failed read leaves the last listing in place and throws. */
    void refresh() {
        last = List.copyOf(delegate.all());
    }

    @Override
    public Optional<Placement> locate(String vm) {
        return last.stream()
                .filter(p -> p.vm().equals(vm))
                .map(VmPlacement::placement)
                .findFirst();
    }

    @Override
    public List<VmPlacement> all() {
        return last;
    }
}
