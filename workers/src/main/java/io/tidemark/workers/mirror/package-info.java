/**
 * Continuous protection (ADR 19): {@link io.tidemark.workers.mirror.ContinuousMirror} keeps one
 * QEMU active mirror ({@code blockdev-mirror copy-mode=write-blocking}) per protected disk running
 * into an NBD export at the DR site, resumes it after a DR-link outage (QEMU resynchronises only
 * what its dirty bitmap marked) and measures its lag from memory.
 */
package io.tidemark.workers.mirror;
