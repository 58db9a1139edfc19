package io.tidemark.core.hypervisor;

import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.repository.VmDefinition;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * A point-in-time capture of all disks of one VM, exported read-only over NBD until closed. The
 * exported content never changes, whatever the guest writes afterwards.
 */
public interface Capture extends AutoCloseable {

    /** The snapshot moment (the instant the atomic transaction returned). */
    Instant capturedAt();

    /**
     * The consistency achieved. An adapter that never quiesces the guest returns {@link
     * CaptureConsistency#crash()}; one asked for {@link ConsistencyPolicy#APPLICATION_REQUIRED} either achieves {@code
     * application} or fails the capture.
     */
    default CaptureConsistency consistency() {
        return CaptureConsistency.crash();
    }

    /**
     * The VM's definition as seen at the snapshot moment, secrets removed; empty when the adapter
     * cannot read it (the default). The worker stores it in the restore point's manifest.
     */
    default Optional<VmDefinition> definition() {
        return Optional.empty();
    }

    /** One export per disk, in the VM's disk order. */
    List<DiskExport> disks();

    /**
     * Called once the restore point built from this capture is committed: the checkpoint that was
     * exported as the change set is no longer needed and is dropped. After {@link #close()} (a
     * cancelled job) it does nothing: the next capture then reads in full.
     */
    void commit();

    /**
     * Throws a {@link io.tidemark.core.RetriableException} that says why if the point-in-time view
     * of some disk was given up while it was exported (an adapter that bounds how long a guest write
     * may wait for its copy-before-write lets the write go ahead and abandons the snapshot), so that
     * no restore point is made of it. The worker calls it when reading a disk failed (its reason then
     * replaces the read error) and before it commits a restore point. The default: the view is never
     * given up.
     */
    default void verifyIntact() {}

    /**
     * Tears the exports down. If {@link #commit()} was not called, the change tracking is restored
     * so that the next capture still sees every change made since the last committed one.
     *
     * <p>May be called from another thread while a reader of the exports is blocked (a job's
     * deadline cancelling it): the exports go away, which fails the blocked reads, and the call
     * returns within the adapter's timeout even when the hypervisor does not answer (then it throws
     * a {@link io.tidemark.core.RetriableException}, and what it could not remove is removed by the
     * next capture of the VM). Calling it again does nothing.
     */
    @Override
    void close();
}
