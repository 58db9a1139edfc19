package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.policies.PolicyParser;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class SnapshotJobsTest {

    @Test
    void aJobCarriesThePolicysConsistencyFullCadenceAndReadBandwidth() {
        var policy = new PolicyParser()
                .parse(
                        Path.of("db.yaml"),
                        """
                        name: db
                        vms: {names: [db-1]}
                        schedule: {interval: 15m}
                        rpo: 1h
                        consistency: application-required
                        full-every: 7d
                        qos: {read-bandwidth: 40MiB/s, read-iops: 1500}
                        """
                                .getBytes(StandardCharsets.UTF_8));
        Instant at = Instant.parse("2026-11-24T00:00:00Z");

        SnapshotJob job = SnapshotJobs.of(policy, "db-1", "hv1", Trigger.schedule("db"), List.of(), at);

        assertThat(job.applicationConsistencyRequired()).isTrue();
        assertThat(job.fullEvery()).contains(Duration.ofDays(7));
        assertThat(job.readBytesPerSecond()).hasValue(40L << 20);
        assertThat(job.readIopsPerSecond()).hasValue(1500);
    }

    private static io.tidemark.policies.Policy policy(String schedule) {
        return new PolicyParser()
                .parse(
                        Path.of("web.yaml"),
                        ("name: web\nvms: {names: [web-1]}\nschedule: " + schedule + "\nrpo: 1h\n")
                                .getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aScheduledJobIsValidUntilThePolicysNextFiring() {
        Instant at = Instant.parse("2026-11-24T00:00:00Z");
        SnapshotJob interval =
                SnapshotJobs.of(policy("{interval: 15m}"), "web-1", "hv1", Trigger.schedule("web"), List.of(), at);
        assertThat(interval.notAfter()).contains(at.plus(Duration.ofMinutes(15)));

        SnapshotJob cron = SnapshotJobs.of(
                policy("{cron: \"0 0/10 * * * ?\"}"), "web-1", "hv1", Trigger.schedule("web"), List.of(), at);
        assertThat(cron.notAfter()).contains(Instant.parse("2026-11-24T00:10:00Z"));
    }

    @Test
    void aHooksJobIsValidForAnHourAfterItsSubmission() {
        Instant at = Instant.parse("2026-11-24T00:00:00Z");
        SnapshotJob job = SnapshotJobs.of(
                policy("{interval: 15m}"),
                "web-1",
                "hv1",
                new Trigger(TriggerKind.HOOK, java.util.Map.of("app", "shop")),
                List.of(),
                at);
        assertThat(job.notAfter()).contains(at.plus(Duration.ofHours(1)));
    }
}
