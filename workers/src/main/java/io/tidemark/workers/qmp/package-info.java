/**
 * The QEMU adapter of the capture port: {@link io.tidemark.workers.qmp.QmpClient} speaks QMP over a
 * Unix socket, {@link io.tidemark.workers.qmp.QmpHypervisor} implements {@link
 * io.tidemark.core.hypervisor.Hypervisor} with persistent dirty bitmaps, classic image fleecing
 * ({@code blockdev-backup sync=none}) and NBD exports, as verified on QEMU 7.2. QMP errors leave
 * this package as
 * {@link io.tidemark.core.RetriableException} or {@link io.tidemark.core.PermanentException}.
 */
package io.tidemark.workers.qmp;
