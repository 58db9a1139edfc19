/**
 * The Ceph RADOS adapter of {@link io.tidemark.core.target.ObjectTarget}: {@link
 * io.tidemark.replicator.rados.RadosObjectTarget} stores objects directly in a RADOS pool through
 * librados (rados-java), configured by {@link io.tidemark.replicator.rados.RadosTargetConfig}.
 */
package io.tidemark.replicator.rados;
