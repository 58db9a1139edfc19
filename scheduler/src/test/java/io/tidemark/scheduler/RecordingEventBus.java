package io.tidemark.scheduler;

import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An {@link EventBus} that records what is published, in order, and can be told to fail publishes
 * for given keys. Subscriptions deliver nothing.
 */
final class RecordingEventBus implements EventBus {

    /** One publish. */
    record Published(String topic, String key, Event event) {
        SnapshotJob job() {
            return (SnapshotJob) event.payload();
        }
    }

    private final List<Published> published = new CopyOnWriteArrayList<>();
    private final Set<String> failingKeys = ConcurrentHashMap.newKeySet();

    /** Makes every later publish keyed {@code key} throw a {@link RetriableException}. */
    void failFor(String key) {
        failingKeys.add(key);
    }

    @Override
    public void publish(String topic, String key, Event event) {
        if (failingKeys.contains(key)) {
            throw new RetriableException("injected failure publishing " + key + " to " + topic);
        }
        published.add(new Published(topic, key, event));
    }

    /** Everything published so far, in order. */
    List<Published> published() {
        return List.copyOf(published);
    }

    /** The jobs published for {@code policy}, in order. */
    List<Published> forPolicy(String policy) {
        return published.stream().filter(p -> p.job().policy().equals(policy)).toList();
    }

    @Override
    public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
        return () -> {};
    }

    @Override
    public void close() {}
}
