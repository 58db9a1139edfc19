package io.tidemark.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.BudgetExceeded;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.PreDeployRequested;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.RpoViolated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.VmGone;
import io.tidemark.core.event.VmPlaced;
import java.io.IOException;
import java.time.Instant;
import java.util.Map;

/**
 * The wire form of events: one JSON object
 * {@code {"v":1,"type":"snapshot-job","eventId":…,"jobId":…,"time":…,"payload":{…}}}. Type names are
 * stable; payload classes may be renamed freely.
 */
public final class EventCodec {

    private static final Map<String, Class<? extends EventPayload>> TYPES = Map.ofEntries(
            Map.entry("snapshot-job", SnapshotJob.class),
            Map.entry("snapshot-captured", SnapshotCaptured.class),
            Map.entry("restore-point-created", RestorePointCreated.class),
            Map.entry("replica-committed", ReplicaCommitted.class),
            Map.entry("job-failed", JobFailed.class),
            Map.entry("rpo-violated", RpoViolated.class),
            Map.entry("pre-deploy-requested", PreDeployRequested.class),
            Map.entry("vm-placed", VmPlaced.class),
            Map.entry("vm-gone", VmGone.class),
            Map.entry("budget-exceeded", BudgetExceeded.class));

    private EventCodec() {}

    public static String typeName(EventPayload payload) {
        return TYPES.entrySet().stream()
                .filter(e -> e.getValue() == payload.getClass())
                .map(Map.Entry::getKey)
                .findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no wire name for " + payload.getClass()));
    }

    public static byte[] encode(Event event) {
        ObjectNode root = Json.mapper().createObjectNode();
        root.put("v", FormatConstants.EVENT_FORMAT_VERSION);
        root.put("type", typeName(event.payload()));
        root.put("eventId", event.eventId());
        root.put("jobId", event.jobId());
        root.put("time", event.time().toString());
        root.set("payload", Json.mapper().valueToTree(event.payload()));
        try {
            return Json.mapper().writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode " + event, e);
        }
    }

    /**
     * Parses an event.
     *
     * @throws PermanentException for anything that is not a well-formed event of a known type and a
     *     supported version (such a record goes to the dead-letter topic)
     */
    public static Event decode(byte[] bytes) {
        try {
            JsonNode root = Json.mapper().readTree(bytes);
            if (root == null || !root.isObject()) {
                throw new PermanentException("event is not a JSON object");
            }
            int v = root.path("v").asInt(-1);
            if (v < 1 || v > FormatConstants.EVENT_FORMAT_VERSION) {
                throw new PermanentException("event format version " + v + " is not supported (this Tidemark reads "
                        + FormatConstants.EVENT_FORMAT_VERSION + "); upgrade the consumer");
            }
            String type = root.path("type").asText();
            Class<? extends EventPayload> cls = TYPES.get(type);
            if (cls == null) {
                throw new PermanentException("unknown event type '" + type + "'");
            }
            EventPayload payload = Json.mapper().treeToValue(root.get("payload"), cls);
            return new Event(text(root, "eventId"), text(root, "jobId"), Instant.parse(text(root, "time")), payload);
        } catch (IOException | RuntimeException e) {
            if (e instanceof PermanentException p) {
                throw p;
            }
            throw new PermanentException("malformed event: " + e.getMessage(), e);
        }
    }

    private static String text(JsonNode root, String field) {
        JsonNode n = root.get(field);
        if (n == null || !n.isTextual()) {
            throw new PermanentException("event has no '" + field + "'");
        }
        return n.asText();
    }
}
