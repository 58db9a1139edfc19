/**
 * The clustered JDBC job store of the scheduler against a real PostgreSQL (the test kit's {@link
 * io.tidemark.testkit.fixture.PostgresFixture}: a throwaway cluster, or a container where Docker is
 * reachable) with the Quartz tables loaded ({@code QuartzTables}), a child-JVM scheduler node and the
 * failover and misfire integration tests.
 */
package io.tidemark.scheduler.jdbc;
