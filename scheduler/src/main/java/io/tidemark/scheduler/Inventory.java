package io.tidemark.scheduler;

import java.util.List;
import java.util.Optional;

/**
 * The scheduler's view of which VMs exist, where they run and which labels they carry. In
 * production it follows the compacted {@code tidemark.inventory} topic, so routing follows live
 * migration.
 *
 * <p>Implementations are thread-safe: the scheduler calls them from its worker threads. A view may
 * lag reality; the scheduler uses whatever it returns at the moment of a firing. A backing store
 * that is unavailable raises {@link io.tidemark.core.RetriableException}.
 */
public interface Inventory {

    /** Where {@code vm} runs now, or empty if the inventory does not know it. */
    Optional<Placement> locate(String vm);

    /** Every known VM, in VM-name order; a consistent snapshot, safe to iterate. */
    List<VmPlacement> all();
}
