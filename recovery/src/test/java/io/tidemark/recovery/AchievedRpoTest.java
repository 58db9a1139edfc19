package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.workers.mirror.DrPoint;
import io.tidemark.workers.mirror.MirrorRecord;
import io.tidemark.workers.mirror.MirrorState;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class AchievedRpoTest {

    private static final Instant HEARD = Instant.parse("2026-12-07T03:00:00Z");
    private static final Duration BEAT = Duration.ofSeconds(2);
    private static final Instant NOW = HEARD.plusSeconds(600);

    private static MirrorRecord.Disk disk(String name, MirrorState.Phase phase, Instant lastInSync) {
        return new MirrorRecord.Disk(name, "nbd://dr/x", phase, Duration.ZERO, Optional.ofNullable(lastInSync));
    }

    private static MirrorRecord record(MirrorRecord.Disk... disks) {
        return new MirrorRecord("db-1", "cdp", HEARD, BEAT, List.of(disks));
    }

    @Test
    void aMirrorInSyncWhenLastHeardAchievedRpoZeroExactly() {
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.IN_SYNC, HEARD))), Optional.empty(), NOW, "x");

        assertThat(r.rpo()).contains(Duration.ZERO);
        assertThat(r.upperBound()).isFalse();
        assertThat(r.dataAsOf()).contains(HEARD);
        assertThat(r.primaryLostAt()).contains(HEARD.plus(BEAT).plus(BEAT));
        assertThat(r.lostAtFrom()).isEqualTo("heartbeat");
        assertThat(r.label()).isEqualTo("0.0s");
    }

    @Test
    void anOutageReportsAnUpperBoundFromTheLastInSyncToTheHeartbeatThatNeverCame() {
        Instant t0 = HEARD.minusSeconds(30);
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(
                        disk("sd0", MirrorState.Phase.IN_SYNC, HEARD), disk("sd1", MirrorState.Phase.OUTAGE, t0))),
                Optional.empty(),
                NOW,
                "x");

        // the primary may have written until the next record was due (and one heartbeat of lateness):
        // never less than the true window
        assertThat(r.rpo()).contains(Duration.ofSeconds(34));
        assertThat(r.upperBound()).isTrue();
        assertThat(r.dataAsOf()).contains(t0);
        assertThat(r.label()).isEqualTo("<=34.0s");
    }

    @Test
    void theOperatorsMomentOfLossWins() {
        Instant t0 = HEARD.minusSeconds(30);
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.OUTAGE, t0))),
                Optional.of(HEARD.plusSeconds(10)),
                NOW,
                "x");

        assertThat(r.rpo()).contains(Duration.ofSeconds(40));
        assertThat(r.lostAtFrom()).isEqualTo("operator");
    }

    @Test
    void inSyncButLostLongAfterTheRecordsStoppedIsABoundNotZero() {
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.IN_SYNC, HEARD))),
                Optional.of(HEARD.plusSeconds(60)),
                NOW,
                "x");

        assertThat(r.rpo()).contains(Duration.ofSeconds(60));
        assertThat(r.upperBound()).isTrue();
        assertThat(r.note()).contains("the records stopped first");
    }

    @Test
    void withoutARecordTheRpoIsUnknownNotZero() {
        AchievedRpo r = AchievedRpo.ofReplica(Optional.empty(), Optional.empty(), NOW, "s3://b/mirror/db-1/");

        assertThat(r.rpo()).isEmpty();
        assertThat(r.label()).isEqualTo("unknown");
        assertThat(r.note()).contains("no mirror state record at s3://b/mirror/db-1/");
    }

    @Test
    void aReplicaThatNeverFinishedItsFirstCopyHasNoDataMoment() {
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.SYNCING, null))), Optional.empty(), NOW, "x");

        assertThat(r.rpo()).isEmpty();
        assertThat(r.dataAsOf()).isEmpty();
        assertThat(r.note()).contains("never finished its first copy");
    }

    @Test
    void heartbeatNeverLiesInTheFuture() {
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.OUTAGE, HEARD.minusSeconds(5)))),
                Optional.empty(),
                HEARD.plusMillis(500),
                "x");

        assertThat(r.primaryLostAt()).contains(HEARD.plusMillis(500));
        assertThat(r.rpo()).contains(Duration.ofMillis(5500));
    }

    @Test
    void pointsAreAsOfTheirOldestMomentLessTheLagThen() {
        Instant p1 = HEARD.minusSeconds(300);
        Instant p2 = HEARD.minusSeconds(290);
        List<DrPoint> points = List.of(
                new DrPoint("p-1", "db-1", p1, true, Duration.ZERO, Optional.empty(), Path.of("/p/1")),
                new DrPoint("p-2", "db-1", p2, false, Duration.ofSeconds(20), Optional.empty(), Path.of("/p/2")));

        AchievedRpo r = AchievedRpo.ofPoints(
                points, Optional.of(record(disk("sd0", MirrorState.Phase.IN_SYNC, HEARD))), Optional.empty(), NOW);

        assertThat(r.dataAsOf()).contains(HEARD.minusSeconds(310));
        assertThat(r.rpo()).contains(Duration.ofSeconds(314));
        assertThat(r.upperBound()).isTrue();
        assertThat(r.note()).contains("taken while the mirror lagged");
    }

    @Test
    void pickTakesTheNewestPointNotAfterTheMomentOrTheExactId() {
        List<DrPoint> points = List.of(
                new DrPoint("p-1", "db-1", HEARD.minusSeconds(20), true, Duration.ZERO, Optional.empty(), Path.of("a")),
                new DrPoint(
                        "p-2", "db-1", HEARD.minusSeconds(10), true, Duration.ZERO, Optional.empty(), Path.of("b")));

        assertThat(ContinuousFailover.pick(points, new ContinuousFailover.Choice.At(HEARD.minusSeconds(15))))
                .map(DrPoint::id)
                .contains("p-1");
        assertThat(ContinuousFailover.pick(points, new ContinuousFailover.Choice.At(HEARD.minusSeconds(10))))
                .map(DrPoint::id)
                .contains("p-2");
        assertThat(ContinuousFailover.pick(points, new ContinuousFailover.Choice.At(HEARD.minusSeconds(60))))
                .isEmpty();
        assertThat(ContinuousFailover.pick(points, new ContinuousFailover.Choice.Point("p-1")))
                .map(DrPoint::id)
                .contains("p-1");
    }

    @Test
    void anOperatorsMomentBeforeTheLastRecordCannotShrinkTheRpo() {
        Instant t0 = HEARD.minusSeconds(30);
        AchievedRpo r = AchievedRpo.ofReplica(
                Optional.of(record(disk("sd0", MirrorState.Phase.OUTAGE, t0))),
                Optional.of(HEARD.minusSeconds(20)),
                NOW,
                "x");

        // the primary was still heard (and writing) at HEARD
        assertThat(r.rpo()).contains(Duration.ofSeconds(30));
        assertThat(r.primaryLostAt()).contains(HEARD);
        assertThat(r.lostAtFrom()).isEqualTo("heartbeat");
    }
}
