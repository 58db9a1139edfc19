package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.tidemark.policies.Schedule;
import java.time.Duration;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class QuartzJdbcTest {
    final QuartzJdbc jdbc = QuartzJdbc.of("jdbc:postgresql://127.0.0.1:5432/quartz", "tidemark", "s3cret", "prod");

    @Test
    void propertiesDescribeAClusteredPostgresStoreSharedByName() {
        Properties p = jdbc.withCheckinInterval(Duration.ofSeconds(1)).properties();

        assertThat(p)
                .containsEntry("org.quartz.scheduler.instanceName", "prod")
                .containsEntry("org.quartz.scheduler.instanceId", "AUTO")
                .containsEntry("org.quartz.jobStore.class", "org.quartz.impl.jdbcjobstore.JobStoreTX")
                .containsEntry(
                        "org.quartz.jobStore.driverDelegateClass", "org.quartz.impl.jdbcjobstore.PostgreSQLDelegate")
                .containsEntry("org.quartz.jobStore.isClustered", "true")
                .containsEntry("org.quartz.jobStore.clusterCheckinInterval", "1000")
                .containsEntry("org.quartz.jobStore.misfireThreshold", "60000")
                .containsEntry("org.quartz.jobStore.dataSource", "tidemark")
                .containsEntry("org.quartz.dataSource.tidemark.provider", "hikaricp")
                .containsEntry("org.quartz.dataSource.tidemark.URL", "jdbc:postgresql://127.0.0.1:5432/quartz")
                .containsEntry("org.quartz.dataSource.tidemark.password", "s3cret");
    }

    @Test
    void overridesKeepTheDefaultsOfWhatTheyDoNotSet() {
        Properties merged = PolicyScheduler.defaultQuartzProperties();
        merged.putAll(jdbc.properties());

        assertThat(merged)
                .containsEntry("org.quartz.scheduler.instanceName", "prod")
                .containsEntry("org.quartz.threadPool.threadCount", "2");
    }

    @Test
    void toStringLeavesThePasswordOut() {
        assertThat(jdbc.toString()).doesNotContain("s3cret").contains("cluster prod");
    }

    @Test
    void rejectsWhatCannotWork() {
        assertThrows(IllegalArgumentException.class, () -> QuartzJdbc.of("jdbc:mysql://127.0.0.1/q", "u", "", "c"));
        assertThrows(
                IllegalArgumentException.class, () -> QuartzJdbc.of("jdbc:postgresql://127.0.0.1/q", "u", "", " "));
        assertThrows(IllegalArgumentException.class, () -> jdbc.withCheckinInterval(Duration.ZERO));
    }

    @Test
    void theScheduleKeyChangesExactlyWithWhatTheTriggerDependsOn() {
        Schedule hourly = Schedule.Interval.every(Duration.ofHours(1));
        assertThat(PolicyScheduler.scheduleKey(hourly)).isEqualTo("interval PT1H jitter PT0S");
        assertThat(PolicyScheduler.scheduleKey(new Schedule.Interval(Duration.ofHours(1), Duration.ofMinutes(5))))
                .isNotEqualTo(PolicyScheduler.scheduleKey(hourly));
        assertThat(PolicyScheduler.scheduleKey(Schedule.Cron.of("0 0 * * * ?")))
                .isEqualTo("cron 0 0 * * * ? jitter PT0S");
    }
}
