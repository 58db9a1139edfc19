package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the primary's engine last recorded of a continuously protected VM's mirror (ADR 22), read by
 * the DR site at failover to tell how complete the replica is: one object {@code
 * mirror/<vm>/<millis>.json} per VM in each location the policy names (written by {@link
 * MirrorRecorder} on every phase change and every {@code heartbeat} while nothing changes).
 *
 * @param vm the protected VM
 * @param policy its continuous policy
 * @param writtenAt when the engine wrote this record (the primary was alive then)
 * @param heartbeat how often the engine rewrites the record while nothing changes: a record older
 *     than this means the primary (or its engine, or its way to this location) went silent
 * @param disks the newest mirror state of each disk at {@code writtenAt}
 */
public record MirrorRecord(String vm, String policy, Instant writtenAt, Duration heartbeat, List<Disk> disks) {

    /** The key prefix of the records. */
    public static final String PREFIX = "mirror/";

    private static final ObjectMapper JSON = new ObjectMapper();

    public MirrorRecord {
        disks = List.copyOf(disks);
    }

    /**
     * One disk's mirror at {@code writtenAt}.
     *
     * @param lastInSync when its mirror was last seen in sync (empty: never since protection began)
     */
    public record Disk(
            String disk, String target, MirrorState.Phase phase, Duration lag, Optional<Instant> lastInSync) {

        /** The disk's part of a record, from its newest state. */
        public static Disk of(MirrorState s) {
            return new Disk(s.disk(), s.target(), s.phase(), s.lag(), s.lastInSync());
        }
    }

    /** True when every disk's mirror was in sync at {@code writtenAt}. */
    public boolean inSync() {
        return !disks.isEmpty() && disks.stream().allMatch(d -> d.phase() == MirrorState.Phase.IN_SYNC);
    }

    /**
     * The moment up to which the replicas are known to hold every completed guest write: {@code
     * writtenAt} when every disk was in sync, else the oldest last-in-sync of the disks that were
     * not; empty when some disk never was in sync (its replica is not a complete disk).
     */
    public Optional<Instant> dataAsOf() {
        if (disks.isEmpty()) {
            return Optional.empty();
        }
        Instant oldest = writtenAt;
        for (Disk d : disks) {
            if (d.phase() == MirrorState.Phase.IN_SYNC) {
                continue;
            }
            if (d.lastInSync().isEmpty()) {
                return Optional.empty();
            }
            if (d.lastInSync().get().isBefore(oldest)) {
                oldest = d.lastInSync().get();
            }
        }
        return Optional.of(oldest);
    }

    /** The phases of the disks, e.g. {@code sd0=IN_SYNC,sd1=OUTAGE}: what a change of triggers a write. */
    public String phases() {
        return String.join(
                ",", disks.stream().map(d -> d.disk() + "=" + d.phase()).toList());
    }

    /** The key of this record: {@code mirror/<vm>/<writtenAt millis, 15 digits>.json} (sorts by time). */
    public String key() {
        return prefix(vm) + String.format("%015d", writtenAt.toEpochMilli()) + ".json";
    }

    /** The key prefix of {@code vm}'s records. */
    public static String prefix(String vm) {
        return PREFIX + vm + "/";
    }

    /** The record as JSON bytes (version 1). */
    public byte[] toJson() {
        ObjectNode o = JSON.createObjectNode()
                .put("version", 1)
                .put("vm", vm)
                .put("policy", policy)
                .put("writtenAt", writtenAt.toString())
                .put("heartbeatMillis", heartbeat.toMillis())
                .put("inSync", inSync());
        dataAsOf().ifPresent(t -> o.put("dataAsOf", t.toString()));
        ArrayNode ds = o.putArray("disks");
        for (Disk d : disks) {
            ObjectNode x = ds.addObject()
                    .put("disk", d.disk())
                    .put("target", d.target())
                    .put("phase", d.phase().name())
                    .put("lagMillis", d.lag().toMillis());
            d.lastInSync().ifPresent(t -> x.put("lastInSync", t.toString()));
        }
        try {
            return JSON.writeValueAsBytes(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Reads a record written by {@link #toJson()}.
     *
     * @throws PermanentException naming {@code where} when the bytes are not a record
     */
    public static MirrorRecord parse(byte[] json, String where) {
        try {
            JsonNode o = JSON.readTree(json);
            if (o == null || o.path("version").asInt() != 1) {
                throw new PermanentException(
                        "the mirror state record " + where + " is not version 1; upgrade Tidemark");
            }
            List<Disk> disks = new ArrayList<>();
            for (JsonNode d : o.path("disks")) {
                disks.add(new Disk(
                        d.path("disk").asText(),
                        d.path("target").asText(),
                        MirrorState.Phase.valueOf(d.path("phase").asText()),
                        Duration.ofMillis(d.path("lagMillis").asLong()),
                        Optional.ofNullable(d.get("lastInSync")).map(n -> Instant.parse(n.asText()))));
            }
            return new MirrorRecord(
                    o.path("vm").asText(),
                    o.path("policy").asText(),
                    Instant.parse(o.path("writtenAt").asText()),
                    Duration.ofMillis(o.path("heartbeatMillis").asLong()),
                    disks);
        } catch (IOException | RuntimeException e) {
            if (e instanceof PermanentException p) {
                throw p;
            }
            throw new PermanentException("the mirror state record " + where + " cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * The newest readable record of {@code vm} at {@code target}, if there is one. A record that
     * cannot be read (cut short) is skipped for the one before it.
     */
    public static Optional<MirrorRecord> newest(ObjectTarget target, String vm) {
        List<String> keys = new ArrayList<>(target.list(prefix(vm)));
        keys.removeIf(k -> !k.endsWith(".json"));
        for (int i = keys.size() - 1; i >= 0; i--) {
            String key = keys.get(i);
            Optional<byte[]> bytes = target.get(key);
            if (bytes.isEmpty()) {
                continue; // replaced meanwhile
            }
            try {
                return Optional.of(parse(bytes.get(), target.describe() + "/" + key));
            } catch (PermanentException e) {
                if (i == 0) {
                    throw e;
                }
            }
        }
        return Optional.empty();
    }
}
