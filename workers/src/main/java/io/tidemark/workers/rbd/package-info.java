/**
 * Storage-native change tracking for disks on Ceph RBD (ADR 18): {@link
 * io.tidemark.workers.rbd.RbdChangeTracker} keeps one RBD snapshot per image at the last committed
 * point and lists the extents changed since it ({@code rbd diff}, fast with the image's {@code
 * fast-diff} object map), so an incremental does not need QEMU's dirty bitmap, which an {@code rbd}
 * node cannot persist across a QEMU restart. Ceph errors leave this package as {@link
 * io.tidemark.core.RetriableException} (cluster unreachable, busy) or {@link
 * io.tidemark.core.PermanentException} (pool or image missing, no permission).
 */
package io.tidemark.workers.rbd;
