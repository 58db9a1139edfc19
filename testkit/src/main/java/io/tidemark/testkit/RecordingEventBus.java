package io.tidemark.testkit;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A fake {@link EventBus} that records what is published and delivers it synchronously to the
 * subscribers of its topic (no groups, no offsets). For unit tests; the Kafka bus is tested against
 * a real broker.
 */
public final class RecordingEventBus implements EventBus {

    /** One published event. */
    public record Published(String topic, String key, Event event) {}

    private final List<Published> published = new CopyOnWriteArrayList<>();
    private final List<Sub> subscribers = new CopyOnWriteArrayList<>();

    private record Sub(List<String> topics, EventHandler handler) {}

    @Override
    public void publish(String topic, String key, Event event) {
        published.add(new Published(topic, key, event));
        for (Sub s : subscribers) {
            if (s.topics().contains(topic)) {
                s.handler().handle(topic, event);
            }
        }
    }

    @Override
    public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
        Sub s = new Sub(List.copyOf(topics), handler);
        subscribers.add(s);
        return () -> subscribers.remove(s);
    }

    public List<Published> published() {
        return List.copyOf(published);
    }

    /** The payloads of type {@code type} published so far, in order. */
    public <T extends EventPayload> List<T> payloads(Class<T> type) {
        return published.stream()
                .map(p -> p.event().payload())
                .filter(type::isInstance)
                .map(type::cast)
                .toList();
    }

    @Override
    public void close() {
        subscribers.clear();
    }
}
