/**
 * Keeping a repository healthy while it is in use: {@link io.tidemark.repository.maintenance.Verifier}
 * (find and repair missing or corrupt objects), {@link
 * io.tidemark.repository.maintenance.GarbageCollector} (two-phase mark-and-sweep with a grace
 * period), and the leases in {@code state/} by which writers and a sweeping collector keep out of
 * each other's way ({@link io.tidemark.repository.maintenance.WriteLease}, {@link
 * io.tidemark.repository.maintenance.GcLock}). Everything here works on any {@link
 * io.tidemark.core.target.ObjectTarget}: it needs neither object modification times nor overwrites.
 */
package io.tidemark.repository.maintenance;
