package io.tidemark.core.bus;

import io.tidemark.core.event.Event;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

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
     * Starts appending {@code event} like {@link #publish} and returns at once; the future completes
     * when the log has acknowledged it durably, or exceptionally with what {@link #publish} would
     * have thrown. Lets a caller with many events (a firing of thousands of VMs) have them all in
     * flight instead of waiting for each acknowledgement in turn. The default publishes before it
     * returns.
     */
    default java.util.concurrent.CompletableFuture<Void> publishAsync(String topic, String key, Event event) {
        try {
            publish(topic, key, event);
            return java.util.concurrent.CompletableFuture.completedFuture(null);
        } catch (RuntimeException e) {
            return java.util.concurrent.CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Delivers the events of {@code topics} to {@code handler} on a thread of the bus, one at a time,
     * as member of consumer group {@code group}. An event's position is committed only after the
     * handler returns normally or the event went to the dead-letter topic; a {@link
     * io.tidemark.core.RetriableException} is retried with backoff a bounded number of times, then
     * dead-lettered with the reason; any other exception dead-letters it at once. Closing the
     * subscription (or the bus) stops delivery, waits a bounded time for the running handler and
     * commits what finished.
     */
    Subscription subscribe(String group, List<String> topics, EventHandler handler);

    /**
     * As {@link #subscribe}, but events of different keys are handled concurrently (at most {@code
     * maxInFlight} at once, each key on its own lane), while the events of one key are handled one
     * after the other, in order. A handler that blocks holds only its key's lane. A partition's
     * position is committed only up to the first event not yet handled, so a crash redelivers what
     * was in flight and nothing is lost. A retriable failure is retried with backoff a bounded
     * number of times, then dead-lettered like a permanent one.
     *
     * <p>The default delivers sequentially, which is correct but lets one key block the others.
     */
    default Subscription subscribeByKey(String group, List<String> topics, int maxInFlight, EventHandler handler) {
        return subscribe(group, topics, handler);
    }

    /**
     * The state of every subscription of this bus, kept current in the background (never a call to
     * the broker): what health and readiness report.
     */
    default List<SubscriptionState> subscriptions() {
        return List.of();
    }

    @Override
    void close();

    /**
     * One subscription's state.
     *
     * @param group the consumer group
     * @param topics the topics it consumes
     * @param running whether its consumer is delivering now (false while it restarts after a fault)
     * @param restarts how often its consumer was restarted after a fault since it started
     * @param lastError the last fault's message, if any (never a secret)
     * @param lastErrorAt when that fault happened
     * @param lag events of its topics not handled yet (behind the log's end, or fetched and still
     *     queued or running), as of its last poll; empty while unknown
     */
    record SubscriptionState(
            String group,
            List<String> topics,
            boolean running,
            int restarts,
            Optional<String> lastError,
            Optional<Instant> lastErrorAt,
            java.util.OptionalLong lag) {
        public SubscriptionState {
            topics = List.copyOf(topics);
            java.util.Objects.requireNonNull(lag, "lag");
        }

        /** A state whose lag is unknown. */
        public SubscriptionState(
                String group,
                List<String> topics,
                boolean running,
                int restarts,
                Optional<String> lastError,
                Optional<Instant> lastErrorAt) {
            this(group, topics, running, restarts, lastError, lastErrorAt, java.util.OptionalLong.empty());
        }
    }

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
