/**
 * The Ceph RADOS adapter of {@link io.tidemark.core.target.ObjectTarget}: {@link
 * io.tidemark.targets.rados.RadosObjectTarget} stores objects directly in a RADOS pool through
 * librados (rados-java), configured by {@link io.tidemark.targets.rados.RadosTargetConfig}.
 */
package io.tidemark.targets.rados;
