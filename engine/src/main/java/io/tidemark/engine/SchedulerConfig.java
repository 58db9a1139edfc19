package io.tidemark.engine;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.Secret;
import io.tidemark.policies.PolicyParser;
import io.tidemark.scheduler.QuartzJdbc;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * The engine config's {@code scheduler:}. Without {@code jdbc} the scheduler keeps its state in
 * memory (one scheduler process); with it, every scheduler process of the fleet shares one Quartz job
 * store on PostgreSQL and exactly one of them fires each firing (ADR 7). The engine creates and
 * upgrades the tables itself.
 *
 * <pre>
 * scheduler:
 *   jdbc:
 *     url: jdbc:postgresql://db1:5432/tidemark
 *     user: tidemark
 *     passwordFile: /etc/tidemark/postgres.pass    # or passwordEnv (default TIDEMARK_POSTGRES_PASSWORD)
 *     cluster: tidemark          # the same on every scheduler of one fleet (default tidemark)
 *     checkinInterval: 5s        # how often each instance says it is alive (default 5s)
 *     misfireThreshold: 60s      # a firing this late still runs for its own time (default 60s)
 * </pre>
 */
public record SchedulerConfig(JdbcConfig jdbc) {

    /** The scheduler's shared job store on PostgreSQL. */
    public record JdbcConfig(
            String url,
            String user,
            Path passwordFile,
            String passwordEnv,
            String cluster,
            String checkinInterval,
            String misfireThreshold) {

        /** Where the password is read from when neither {@code passwordFile} nor {@code passwordEnv} is set. */
        public static final String DEFAULT_PASSWORD_ENV = "TIDEMARK_POSTGRES_PASSWORD";

        public JdbcConfig {
            if (url == null || !url.startsWith("jdbc:postgresql:")) {
                throw new InvalidInputException(
                        "scheduler.jdbc.url must be a PostgreSQL JDBC URL (jdbc:postgresql://HOST:PORT/DATABASE), not "
                                + url);
            }
            if (user == null || user.isBlank()) {
                throw new InvalidInputException("scheduler.jdbc.user is required");
            }
            cluster = cluster == null || cluster.isBlank() ? "tidemark" : cluster;
            duration("checkinInterval", checkinInterval);
            duration("misfireThreshold", misfireThreshold);
        }

        /** The Quartz settings, the password read now from its file or {@code env} (empty when neither holds one). */
        public QuartzJdbc quartz(Map<String, String> env) {
            String env0 = passwordFile == null && passwordEnv == null ? DEFAULT_PASSWORD_ENV : passwordEnv;
            String password = passwordFile != null || env.containsKey(env0)
                    ? Secret.load("the PostgreSQL password", passwordFile, env0, env)
                            .reveal()
                    : ""; // trust or peer authentication
            QuartzJdbc q = QuartzJdbc.of(url, user, password, cluster);
            if (checkinInterval != null) {
                q = q.withCheckinInterval(duration("checkinInterval", checkinInterval));
            }
            if (misfireThreshold != null) {
                q = q.withMisfireThreshold(duration("misfireThreshold", misfireThreshold));
            }
            return q;
        }

        private static Duration duration(String key, String value) {
            if (value == null) {
                return null;
            }
            try {
                return PolicyParser.parseDuration(value);
            } catch (RuntimeException e) {
                throw new InvalidInputException(
                        "scheduler.jdbc." + key + ": expected a duration such as 5s or 1m, got " + value);
            }
        }
    }
}
