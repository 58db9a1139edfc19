/**
 * The libvirt adapter of the capture port: {@link io.tidemark.workers.libvirt.LibvirtHypervisor}
 * implements {@link io.tidemark.core.hypervisor.Hypervisor} with libvirt's backup API (checkpoints
 * and pull-mode backup jobs exported over NBD on a Unix socket), as verified on libvirt 9.0 with
 * QEMU 7.2, for hosts where libvirt owns QEMU's monitor. libvirt errors leave this package as
 * {@link io.tidemark.core.RetriableException} or {@link io.tidemark.core.PermanentException}.
 */
package io.tidemark.workers.libvirt;
