/**
 * The clustered JDBC job store of the scheduler against a real PostgreSQL: a throwaway cluster
 * fixture ({@link io.tidemark.scheduler.jdbc.PostgresCluster}), a child-JVM scheduler node and the
 * failover and misfire integration tests.
 */
package io.tidemark.scheduler.jdbc;
