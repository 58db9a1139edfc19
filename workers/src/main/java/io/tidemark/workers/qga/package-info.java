/**
 * The QEMU guest agent adapter of the {@link io.tidemark.core.hypervisor.GuestAgent} port: QGA's
 * JSON protocol over the Unix socket of the VM's {@code org.qemu.guest_agent.0} virtio-serial port.
 */
package io.tidemark.workers.qga;
