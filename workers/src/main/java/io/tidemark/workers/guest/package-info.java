/**
 * Throwaway guests for checking restored disks: a tiny kernel + initramfs (built by {@code
 * deploy/guest/build-tiny-guest.sh}) booted under QEMU/TCG with no network, the disks attached
 * through copy-on-write overlays, and its guest agent reached through {@link
 * io.tidemark.workers.qga.QgaGuestAgent}.
 */
package io.tidemark.workers.guest;
