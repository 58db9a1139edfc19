/**
 * Instant restore: a restore point served over NBD straight from its repository ({@link
 * io.tidemark.workers.instant.RestorePointExport}), a local qcow2 overlay on top of it that a VM
 * boots from at once, and hydration to a local image by a live block mirror with a pivot ({@link
 * io.tidemark.workers.instant.InstantRestore}).
 */
package io.tidemark.workers.instant;
