package io.tidemark.scheduler.hook;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.PreDeployRequested;
import java.util.Objects;
import java.util.Optional;

/**
 * The Kafka entry point of the pre-deploy hook: the handler of {@code tidemark.triggers} that
 * submits every {@link PreDeployRequested} through {@link HookService#submit}, without waiting.
 * Other trigger events are ignored. A request for an unknown app or with a bad field raises a
 * {@link io.tidemark.core.PermanentException} (the bus sends it to the dead-letter topic); an
 * unavailable bus or inventory a {@link io.tidemark.core.RetriableException} (redelivered, which
 * is harmless: the job ids are the same).
 */
public final class PreDeployTriggerHandler implements EventBus.EventHandler {

    private final HookService service;

    public PreDeployTriggerHandler(HookService service) {
        this.service = Objects.requireNonNull(service, "service");
    }

    @Override
    public void handle(String topic, Event event) {
        if (event.payload() instanceof PreDeployRequested r) {
            // nobody waits on this path, so nothing is watched; the jobs' own events report the outcome
            service.submit(new PreDeployHook(r.app(), r.commit(), r.pipeline(), Optional.empty()))
                    .close();
        }
    }
}
