package io.tidemark.recovery;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The bus of a backup that runs outside the engine (failback): there is no event log to tell, so
 * the events a backup announces are logged at debug level and dropped, and nothing is ever
 * delivered.
 */
final class OfflineBus implements EventBus {

    private static final Logger log = LoggerFactory.getLogger(OfflineBus.class);

    @Override
    public void publish(String topic, String key, Event event) {
        log.debug("failback: not published (offline) to {}: {}", topic, event);
    }

    @Override
    public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
        return () -> {};
    }

    @Override
    public void close() {}
}
