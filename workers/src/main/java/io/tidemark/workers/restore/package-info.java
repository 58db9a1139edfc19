/**
 * Restore adapters: {@link io.tidemark.repository.DiskSink}s that write restored disks into images
 * QEMU creates (qcow2 files, Ceph RBD images), through {@code qemu-nbd} and the NBD client.
 */
package io.tidemark.workers.restore;
