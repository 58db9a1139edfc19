/**
 * The policy scheduler: fires each {@link io.tidemark.policies.Policy} on its schedule and publishes
 * one {@link io.tidemark.core.event.SnapshotJob} per matching VM to the job topic of the VM's host.
 *
 * <p>{@link io.tidemark.scheduler.PolicyScheduler} is the entry point. Where VMs run comes from the
 * {@link io.tidemark.scheduler.Inventory} port ({@link io.tidemark.scheduler.InMemoryInventory} for
 * embedded use and tests). Quartz is an implementation detail: it decides when to fire; no Quartz
 * type appears in the public API.
 */
package io.tidemark.scheduler;
