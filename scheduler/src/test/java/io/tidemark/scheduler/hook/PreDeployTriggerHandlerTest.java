package io.tidemark.scheduler.hook;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.PreDeployRequested;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.format.EventCodec;
import io.tidemark.policies.PolicySet;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PreDeployTriggerHandlerTest {

    static final Instant T0 = Instant.parse("2026-11-24T10:00:00Z");

    private final FakeClock clock = new FakeClock(T0);
    private final RecordingEventBus bus = new RecordingEventBus();
    private final HookService service = new HookService(
            PolicySet.of(HookServiceTest.policy("shop", HookServiceTest.label("shop"), List.of("offsite"), "shop")),
            new InMemoryInventory().put("shop-1", "hv1", Map.of("app", "shop")),
            bus,
            clock);
    private final PreDeployTriggerHandler handler = new PreDeployTriggerHandler(service);

    private static Event request(String app) {
        return Event.of("pre-deploy/" + app, T0, new PreDeployRequested(app, "4f2a9c1", "build-118"));
    }

    @Test
    void aTriggerFromTheWireSubmitsTheHookWithoutWaiting() {
        byte[] wire = EventCodec.encode(request("shop"));
        assertThat(new String(wire, StandardCharsets.UTF_8))
                .contains("\"type\":\"pre-deploy-requested\"")
                .contains("\"payload\":{\"app\":\"shop\",\"commit\":\"4f2a9c1\",\"pipeline\":\"build-118\"}");

        handler.handle(Topics.TRIGGERS, EventCodec.decode(wire));
        handler.handle(Topics.TRIGGERS, EventCodec.decode(wire)); // redelivered

        assertThat(bus.published())
                .extracting(RecordingEventBus.Published::topic, p -> p.event().jobId())
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("tidemark.jobs.hv1", "hook/shop/4f2a9c1/build-118/shop-1"),
                        org.assertj.core.groups.Tuple.tuple("tidemark.jobs.hv1", "hook/shop/4f2a9c1/build-118/shop-1"));
        SnapshotJob job = bus.payloads(SnapshotJob.class).get(0);
        assertThat(job.trigger().attributes()).containsEntry("pipeline", "build-118");
    }

    @Test
    void anUnknownAppGoesToTheDeadLetterTopic() {
        assertThatThrownBy(() -> handler.handle(Topics.TRIGGERS, request("web")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("'web'");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aRequestWithAnEmptyFieldIsRefusedPermanently() {
        Event bad = Event.of("x", T0, new PreDeployRequested("shop", "", "build-118"));
        assertThatThrownBy(() -> handler.handle(Topics.TRIGGERS, bad))
                .isInstanceOf(InvalidHookException.class)
                .hasMessage("'commit' is missing or empty");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void otherEventsAreIgnored() {
        handler.handle(Topics.TRIGGERS, Event.of("j", T0, new SnapshotCaptured("shop-1", T0)));
        assertThat(bus.published()).isEmpty();
    }
}
