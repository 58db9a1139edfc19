package io.tidemark.core.event;

import java.time.Instant;
import java.util.Objects;
import java.util.UUID;

/**
 * The envelope of every message on the bus: a unique event id, the job it belongs to, when it was
 * made, and one typed payload. The wire form (versioned JSON) is defined in the formats module.
 */
public record Event(String eventId, String jobId, Instant time, EventPayload payload) {

    public Event {
        Objects.requireNonNull(eventId, "eventId");
        Objects.requireNonNull(jobId, "jobId");
        Objects.requireNonNull(time, "time");
        Objects.requireNonNull(payload, "payload");
    }

    /** A new event with a random id. */
    public static Event of(String jobId, Instant time, EventPayload payload) {
        return new Event(UUID.randomUUID().toString(), jobId, time, payload);
    }
}
