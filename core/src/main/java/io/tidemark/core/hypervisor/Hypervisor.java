package io.tidemark.core.hypervisor;

import io.tidemark.core.event.ConsistencyPolicy;
import java.util.List;
import java.util.Optional;

/**
 * The VMs of one host and the means to capture them. Adapters: {@code QmpHypervisor} (QEMU's
 * monitor socket) and {@code LibvirtHypervisor}; both export captures as pull-mode NBD.
 *
 * <p>Every adapter bounds each wait on a VM by its timeout (a stopped or hung QEMU is a {@link
 * io.tidemark.core.RetriableException} that says so), treats as leftovers only what carries its
 * names and a {@link HostScratch} tag of a capture that is over, and only checkpoints of the
 * request's {@link CaptureRequest#owner() owner}.
 */
public interface Hypervisor extends AutoCloseable {

    /** The VMs running on this host now, with their disks. */
    List<VmInfo> list();

    /**
     * Takes one atomic point-in-time capture of every disk of {@code request.vm()} without pausing
     * the guest, starts the checkpoint {@code request.newCheckpoint()}, and exports the captured
     * content over NBD. When {@code request.sinceCheckpoint()} names a usable checkpoint, each export
     * carries the dirty bitmap of the changes since it; otherwise the capture is full and says why.
     * The caller must {@link Capture#close() close} the capture.
     *
     * <p>{@code request.quiesce()}: with {@link ConsistencyPolicy#APPLICATION_PREFERRED} or {@link ConsistencyPolicy#APPLICATION_REQUIRED} the
     * adapter freezes the guest's file systems (through its {@link GuestAgent}) just before the
     * snapshot moment and thaws them right after, on every path; {@link Capture#consistency()} says
     * what was achieved. With {@link ConsistencyPolicy#APPLICATION_REQUIRED}, when no agent answers or the freeze fails,
     * the capture fails with a {@link io.tidemark.core.PermanentException} naming the VM, no
     * checkpoint is started and the change tracking is unchanged.
     */
    Capture capture(CaptureRequest request);

    /**
     * The means to switch a running VM's disks to other images (what a rollback needs), when this
     * adapter has them; empty otherwise (the default).
     */
    default Optional<DiskSwitch> diskSwitch() {
        return Optional.empty();
    }

    /**
     * Releases what the adapter holds. Captures still open are abandoned as a crash would leave
     * them: the next capture of their VMs removes what they left. Close captures first.
     */
    @Override
    void close();
}
