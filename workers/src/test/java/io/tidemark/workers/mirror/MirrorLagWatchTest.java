package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.RpoViolated;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

class MirrorLagWatchTest {

    private static final Instant T0 = Instant.parse("2026-12-07T10:00:00Z");
    private final RecordingEventBus bus = new RecordingEventBus();
    private final MirrorLagWatch watch = new MirrorLagWatch(bus, Clock.fixed(T0, ZoneOffset.UTC));
    private final Consumer<MirrorState> listener = watch.listener("cdp", Duration.ofSeconds(1));

    private static MirrorState state(MirrorState.Phase phase, Duration lag) {
        return new MirrorState(
                "vm1", "sd0", "nbd+unix:///dr?socket=/s", phase, 0, lag, Optional.of(T0.minus(lag)), Optional.empty());
    }

    @Test
    void aLagAboveTheRpoIsViolatedOncePerOutage() {
        listener.accept(state(MirrorState.Phase.IN_SYNC, Duration.ZERO));
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofMillis(900)));
        assertThat(bus.payloads(RpoViolated.class)).isEmpty();

        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofMillis(1500)));
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofSeconds(5)));
        assertThat(bus.payloads(RpoViolated.class)).singleElement().satisfies(v -> {
            assertThat(v.vm()).isEqualTo("vm1");
            assertThat(v.location()).isEqualTo(MirrorLagWatch.LOCATION);
            assertThat(v.policy()).isEqualTo("cdp");
            assertThat(v.rpo()).isEqualTo(Duration.ofSeconds(1));
            assertThat(v.age()).isEqualTo(Duration.ofMillis(1500));
        });

        listener.accept(state(MirrorState.Phase.IN_SYNC, Duration.ZERO));
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofSeconds(2)));
        assertThat(bus.payloads(RpoViolated.class)).hasSize(2);
    }

    @Test
    void theLagIsAMetricPerDisk() {
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofMillis(2500)));
        assertThat(watch.metrics())
                .contains("tidemark_mirror_lag_seconds{vm=\"vm1\",disk=\"sd0\"} 2.5")
                .contains("tidemark_mirror_in_sync{vm=\"vm1\",disk=\"sd0\"} 0");
        listener.accept(state(MirrorState.Phase.IN_SYNC, Duration.ZERO));
        assertThat(watch.metrics()).contains("tidemark_mirror_lag_seconds{vm=\"vm1\",disk=\"sd0\"} 0.0");
        assertThat(watch.state("vm1", "sd0"))
                .get()
                .extracting(MirrorState::inSync)
                .isEqualTo(true);
    }

    @Test
    void anUnprotectedVmLeavesNoStateMetricOrOpenViolationBehind() {
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofSeconds(3)));
        assertThat(bus.payloads(RpoViolated.class)).hasSize(1);
        watch.forget("vm1");
        assertThat(watch.states()).isEmpty();
        assertThat(watch.metrics()).doesNotContain("vm=\"vm1\"");
        // protected again and still lagging: a new violation, not one swallowed as already open
        listener.accept(state(MirrorState.Phase.OUTAGE, Duration.ofSeconds(4)));
        assertThat(bus.payloads(RpoViolated.class)).hasSize(2);
    }
}
