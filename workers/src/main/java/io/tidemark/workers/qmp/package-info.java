/**
 * The QEMU adapter of the capture port: {@link io.tidemark.workers.qmp.QmpClient} speaks QMP over a
 * Unix socket, {@link io.tidemark.workers.qmp.QmpHypervisor} implements {@link
 * io.tidemark.core.hypervisor.Hypervisor} with persistent dirty bitmaps, classic image fleecing
 * ({@code blockdev-backup sync=none}) and NBD exports, as verified on QEMU 7.2. It connects to a
 * VM's monitor only for a capture or a query and holds nothing between jobs; every wait on QEMU has
 * a deadline. QMP errors leave this package as
 * {@link io.tidemark.core.RetriableException} or {@link io.tidemark.core.PermanentException}.
 */
package io.tidemark.workers.qmp;
