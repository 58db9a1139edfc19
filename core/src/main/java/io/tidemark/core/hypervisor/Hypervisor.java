package io.tidemark.core.hypervisor;

import java.util.List;

/**
 * The VMs of one host and the means to capture them. Adapters: {@code QmpHypervisor} (QEMU's
 * monitor socket) and, later, {@code LibvirtHypervisor}; both export captures as pull-mode NBD.
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
     */
    Capture capture(CaptureRequest request);

    @Override
    void close();
}
