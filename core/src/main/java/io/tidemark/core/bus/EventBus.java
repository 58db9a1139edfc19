package io.tidemark.core.bus;

import io.tidemark.core.event.Event;
import java.util.List;

/**
 * A durable, partitioned log of events with consumer groups (Kafka in production). Delivery is at
 * least once: handlers must be idempotent by job id.
 */
public interface EventBus extends AutoCloseable {

    /**
     * Appends {@code event} to {@code topic}, keyed by {@code key} (events with one key stay in
     * order). Returns once the log has acknowledged it durably.
     */
    void publish(String topic, String key, Event event);

    /**
     * Delivers the events of {@code topics} to {@code handler} on a thread of the bus, as member of
     * consumer group {@code group}. An event's position is committed only after the handler returns
     * normally; a {@link io.tidemark.core.RetriableException} redelivers it, any other exception
     * sends it to the dead-letter topic.
     */
    Subscription subscribe(String group, List<String> topics, EventHandler handler);

    @Override
    void close();

    /** Handles one delivered event. */
    @FunctionalInterface
    interface EventHandler {
        void handle(String topic, Event event);
    }

    /** A running subscription; closing it stops delivery and leaves the group. */
    interface Subscription extends AutoCloseable {
        @Override
        void close();
    }
}
