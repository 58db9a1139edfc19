/**
 * A real Linux guest for tests: {@link io.tidemark.testkit.guest.TinyGuest} boots a Debian kernel
 * with a busybox initramfs and qemu-guest-agent under TCG (recipes/qemu.md §7), with an ext4 data
 * disk mounted on {@code /mnt}, and runs shell commands in it through the guest agent.
 */
package io.tidemark.testkit.guest;
