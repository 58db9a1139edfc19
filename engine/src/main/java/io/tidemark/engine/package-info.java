/**
 * The engine behind {@code tidemark run}: wires the roles (scheduler, workers, replicator, reconciler) onto one bus, reads the typed engine configuration, opens its targets, and serves health and metrics from memory.
 */
package io.tidemark.engine;
