package io.tidemark.scheduler;

import java.time.Duration;
import java.util.Objects;
import java.util.Properties;
import org.quartz.impl.StdSchedulerFactory;

/**
 * The Quartz settings of a clustered {@link PolicyScheduler}: a {@code JobStoreTX} on PostgreSQL
 * (Quartz's {@code tables_postgres.sql} loaded), a HikariCP pool, {@code isClustered=true} and
 * {@code instanceId=AUTO}. Every instance of one cluster uses the same {@code clusterName} (the
 * Quartz scheduler name, which keys the rows in the tables) and gets its own instance id.
 *
 * <p>Timing contract (docs/adr/0007-quartz-jdbc-cluster.md): an instance that dies is declared
 * failed about {@code checkinInterval + 7.5 s} (Quartz's fixed grace) after its last check-in, and
 * the survivors then take over its triggers. A firing late by less than {@code misfireThreshold} is
 * still run for its own fire time, so keep {@code misfireThreshold} above the failover time to lose
 * no fire time in a failover; later firings are collapsed into one firing "now".
 *
 * @param jdbcUrl for example {@code jdbc:postgresql://127.0.0.1:5432/quartz}
 * @param user the database user
 * @param password the database password (the caller reads it from a file or the environment); may
 *     be empty, never logged
 * @param clusterName the Quartz scheduler name shared by all instances of the cluster
 * @param checkinInterval how often each instance records that it is alive
 * @param misfireThreshold how late a firing may be and still run for its own fire time
 * @param maxConnections the pool size; at least the Quartz worker threads + 2
 */
public record QuartzJdbc(
        String jdbcUrl,
        String user,
        String password,
        String clusterName,
        Duration checkinInterval,
        Duration misfireThreshold,
        int maxConnections) {

    /** Default check-in interval. */
    public static final Duration DEFAULT_CHECKIN_INTERVAL = Duration.ofSeconds(5);
    /** Default misfire threshold: above the default failover time (5 s + 7.5 s + 5 s). */
    public static final Duration DEFAULT_MISFIRE_THRESHOLD = Duration.ofSeconds(60);

    private static final String DATA_SOURCE = "tidemark";

    public QuartzJdbc {
        Objects.requireNonNull(jdbcUrl, "jdbcUrl");
        Objects.requireNonNull(user, "user");
        Objects.requireNonNull(password, "password");
        Objects.requireNonNull(clusterName, "clusterName");
        Objects.requireNonNull(checkinInterval, "checkinInterval");
        Objects.requireNonNull(misfireThreshold, "misfireThreshold");
        if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
            throw new IllegalArgumentException("only PostgreSQL is supported, not " + jdbcUrl);
        }
        if (clusterName.isBlank()) {
            throw new IllegalArgumentException("clusterName must not be blank");
        }
        if (checkinInterval.toMillis() <= 0 || misfireThreshold.toMillis() <= 0) {
            throw new IllegalArgumentException("checkinInterval and misfireThreshold must be positive");
        }
        if (maxConnections < 4) {
            throw new IllegalArgumentException("maxConnections must be at least 4: " + maxConnections);
        }
    }

    /** The settings with the default check-in interval, misfire threshold and pool size (5). */
    public static QuartzJdbc of(String jdbcUrl, String user, String password, String clusterName) {
        return new QuartzJdbc(
                jdbcUrl, user, password, clusterName, DEFAULT_CHECKIN_INTERVAL, DEFAULT_MISFIRE_THRESHOLD, 5);
    }

    /** A copy with another check-in interval. */
    public QuartzJdbc withCheckinInterval(Duration interval) {
        return new QuartzJdbc(jdbcUrl, user, password, clusterName, interval, misfireThreshold, maxConnections);
    }

    /** A copy with another misfire threshold. */
    public QuartzJdbc withMisfireThreshold(Duration threshold) {
        return new QuartzJdbc(jdbcUrl, user, password, clusterName, checkinInterval, threshold, maxConnections);
    }

    /**
     * The Quartz properties to pass as {@code quartzOverrides} to {@link PolicyScheduler#start}. A new
     * copy on each call; it holds the password.
     */
    public Properties properties() {
        Properties p = new Properties();
        p.setProperty(StdSchedulerFactory.PROP_SCHED_INSTANCE_NAME, clusterName);
        p.setProperty(StdSchedulerFactory.PROP_SCHED_INSTANCE_ID, StdSchedulerFactory.AUTO_GENERATE_INSTANCE_ID);
        p.setProperty(StdSchedulerFactory.PROP_JOB_STORE_CLASS, "org.quartz.impl.jdbcjobstore.JobStoreTX");
        p.setProperty("org.quartz.jobStore.driverDelegateClass", "org.quartz.impl.jdbcjobstore.PostgreSQLDelegate");
        p.setProperty("org.quartz.jobStore.dataSource", DATA_SOURCE);
        p.setProperty("org.quartz.jobStore.tablePrefix", "QRTZ_");
        p.setProperty("org.quartz.jobStore.isClustered", "true");
        p.setProperty("org.quartz.jobStore.clusterCheckinInterval", Long.toString(checkinInterval.toMillis()));
        p.setProperty("org.quartz.jobStore.misfireThreshold", Long.toString(misfireThreshold.toMillis()));
        p.setProperty("org.quartz.jobStore.acquireTriggersWithinLock", "true");
        String ds = "org.quartz.dataSource." + DATA_SOURCE + ".";
        p.setProperty(ds + "provider", "hikaricp");
        p.setProperty(ds + "driver", "org.postgresql.Driver");
        p.setProperty(ds + "URL", jdbcUrl);
        p.setProperty(ds + "user", user);
        p.setProperty(ds + "password", password);
        p.setProperty(ds + "maxConnections", Integer.toString(maxConnections));
        return p;
    }

    /** Leaves the password out. */
    @Override
    public String toString() {
        return "QuartzJdbc[" + jdbcUrl + " as " + user + ", cluster " + clusterName + ", check-in " + checkinInterval
                + ", misfire threshold " + misfireThreshold + ", " + maxConnections + " connections]";
    }
}
