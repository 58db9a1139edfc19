package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.RetriableException;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class MirrorRecorderTest {

    private static final Instant T = Instant.parse("2026-12-07T03:00:00Z");

    private final AtomicReference<Instant> now = new AtomicReference<>(T);
    private final Clock clock = new Clock() {
        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now.get();
        }
    };
    private final AtomicReference<List<MirrorState>> states = new AtomicReference<>(List.of());
    private final InMemoryObjectTarget target = new InMemoryObjectTarget();
    private final MirrorRecorder recorder = new MirrorRecorder(
            states::get,
            vm -> Optional.of(new MirrorRecorder.Destination("cdp", List.of(target))),
            clock,
            Duration.ofSeconds(2));

    private static MirrorState state(MirrorState.Phase phase, Instant lastInSync) {
        return new MirrorState(
                "db-1",
                "sd0",
                "nbd://dr/db-1-sd0",
                phase,
                0,
                phase == MirrorState.Phase.IN_SYNC ? Duration.ZERO : Duration.ofSeconds(1),
                Optional.of(lastInSync),
                Optional.empty());
    }

    private void advance(Duration d) {
        now.set(now.get().plus(d));
    }

    @Test
    void writesOnAPhaseChangeAndOnTheHeartbeatNotOnEveryCheck() {
        states.set(List.of(state(MirrorState.Phase.IN_SYNC, T)));
        assertThat(recorder.check()).hasSize(1); // first check
        advance(Duration.ofMillis(250));
        assertThat(recorder.check()).isEmpty(); // nothing changed, heartbeat not due
        advance(Duration.ofMillis(250));
        states.set(List.of(state(MirrorState.Phase.OUTAGE, T.plusMillis(250))));
        List<MirrorRecord> changed = recorder.check();
        assertThat(changed).hasSize(1);
        assertThat(changed.get(0).dataAsOf()).contains(T.plusMillis(250));
        advance(Duration.ofMillis(1500));
        assertThat(recorder.check()).isEmpty();
        advance(Duration.ofMillis(250));
        // heartbeat: due one check before 2 s, so the next record comes within 2 s of the last
        assertThat(recorder.check()).hasSize(1);

        // one record per VM stays: each replaces the one before
        assertThat(target.keys()).hasSize(1);
        MirrorRecord newest = MirrorRecord.newest(target, "db-1").orElseThrow();
        assertThat(newest.writtenAt()).isEqualTo(now.get());
        assertThat(newest.inSync()).isFalse();
        assertThat(newest.policy()).isEqualTo("cdp");
        assertThat(newest.disks().get(0).lastInSync()).contains(T.plusMillis(250));
    }

    @Test
    void aLocationThatFailsIsRetriedAtTheNextCheckAndStillHoldsTheOlderRecord() {
        states.set(List.of(state(MirrorState.Phase.IN_SYNC, T)));
        recorder.check();
        advance(Duration.ofMillis(250));
        states.set(List.of(state(MirrorState.Phase.OUTAGE, T)));
        target.failNext(1, () -> new RetriableException("S3 is down"));
        assertThat(recorder.check()).isEmpty();
        assertThat(MirrorRecord.newest(target, "db-1").orElseThrow().inSync()).isTrue();
        advance(Duration.ofMillis(250));
        assertThat(recorder.check()).hasSize(1);
        assertThat(MirrorRecord.newest(target, "db-1").orElseThrow().inSync()).isFalse();
    }

    @Test
    void aRestartedRecorderRemovesTheRecordsAnEarlierEngineLeft() {
        states.set(List.of(state(MirrorState.Phase.IN_SYNC, T)));
        recorder.check();
        advance(Duration.ofSeconds(30));
        MirrorRecorder next = new MirrorRecorder(
                states::get,
                vm -> Optional.of(new MirrorRecorder.Destination("cdp", List.of(target))),
                clock,
                Duration.ofSeconds(2));
        next.check();
        assertThat(target.keys()).hasSize(1);
        assertThat(MirrorRecord.newest(target, "db-1").orElseThrow().writtenAt())
                .isEqualTo(now.get());
    }

    @Test
    void aRecordRoundTripsThroughJson() {
        MirrorRecord r = new MirrorRecord(
                "db-1",
                "cdp",
                T,
                Duration.ofSeconds(2),
                List.of(MirrorRecord.Disk.of(state(MirrorState.Phase.OUTAGE, T.minusSeconds(3)))));
        MirrorRecord back = MirrorRecord.parse(r.toJson(), "x");
        assertThat(back).isEqualTo(r);
        assertThat(back.dataAsOf()).contains(T.minusSeconds(3));
        assertThat(r.key()).isEqualTo("mirror/db-1/00" + T.toEpochMilli() + ".json");
    }
}
