/** Replication of restore points from the primary repository to off-site targets. */
package io.tidemark.replicator;
