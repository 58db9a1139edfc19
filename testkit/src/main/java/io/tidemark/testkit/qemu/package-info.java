/**
 * Real-QEMU fixtures: {@link io.tidemark.testkit.qemu.QemuVm} starts a guest-less VM whose disks a
 * test writes through the guest device path, and {@link io.tidemark.testkit.qemu.DiskModel} holds
 * the bytes each disk should contain.
 */
package io.tidemark.testkit.qemu;
