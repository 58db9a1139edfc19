/**
 * Restore adapters: {@link io.tidemark.repository.DiskSink}s for images other than raw files: qcow2
 * files written directly ({@link io.tidemark.workers.restore.Qcow2FileSink}), and images QEMU creates
 * and {@code qemu-nbd} exports to the NBD client's writes (Ceph RBD images; its qcow2 variant, {@link
 * io.tidemark.workers.restore.QemuNbdDiskSink#qcow2}, remains as the restore bench's baseline).
 */
package io.tidemark.workers.restore;
