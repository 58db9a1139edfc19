package io.tidemark.engine;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicyParser;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

/** When {@link DrPointSchedule} takes the next DR point, and the objective its status row measures. */
class DrPointScheduleTest {

    private static final Instant T = Instant.parse("2026-03-01T12:07:30Z");

    private static Policy policy(String schedule) {
        return new PolicyParser(Clock.fixed(T, ZoneOffset.UTC))
                .parse(
                        Path.of("db.yaml"),
                        ("""
                        name: db
                        vms: {names: [db-1]}
                        schedule: %s
                        rpo: 2s
                        mode: continuous
                        dr: {nbd: "nbd://dr:1/{vm}-{disk}", qmp: "/run/dr/{vm}-{disk}.qmp", points: "/dr/{vm}"}
                        """)
                                .formatted(schedule)
                                .getBytes(UTF_8));
    }

    @Test
    void anIntervalIsDueOneIntervalAfterTheNewestPointSoARestartKeepsTheCadence() {
        Policy p = policy("{interval: 10m}");
        assertThat(DrPointSchedule.after(p, T)).isEqualTo(T.plus(Duration.ofMinutes(10)));
        assertThat(DrPointSchedule.period(p, T)).isEqualTo(Duration.ofMinutes(10));
    }

    @Test
    void aCronScheduleIsDueAtItsNextTimeAfterTheNewestPoint() {
        Policy p = policy("{cron: \"0 0/15 * * * ?\"}");
        assertThat(DrPointSchedule.after(p, T)).isEqualTo(Instant.parse("2026-03-01T12:15:00Z"));
        // a newest point from before an outage: its next time has passed, so the point is due at once
        assertThat(DrPointSchedule.after(p, T.minus(Duration.ofHours(3)))).isBefore(T);
        assertThat(DrPointSchedule.period(p, T)).isEqualTo(Duration.ofMinutes(15));
    }
}
