package io.tidemark.replicator;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * What the last completed {@link TierSweep} of a location left on each chunk, so the next sweep
 * reads the tag only of chunks whose decision changed or that it has not seen (ADR 20, addendum
 * "the sweep ledger"). Kept at the location itself, beside the data it describes: {@code
 * state/tier/ledger/<seq>.json.gz} (gzip JSON: version, writtenAt, fullReadAt, the tag of every
 * chunk referenced at that sweep grouped by class — "" for none — and the chunks awaiting a
 * rewarm). Written only by the holder of the tier-sweep lock, with put-if-absent at the next
 * sequence number; older ones are deleted after.
 *
 * <p>Before a sweep writes its first tag it puts {@code <seq>.incomplete} next to the ledger it
 * read: a sweep that dies mid-way leaves that marker, and the next sweep trusts none of the tags the
 * ledger lists (it re-reads every one), keeping only its rewarm list. A ledger is also not trusted
 * when it is older than {@code maxGap} (a chunk could have been collected and written again since,
 * untagged) or its last full read is older than {@code fullReadEvery} (a tag changed by hand is
 * found again). The ledger may only make a sweep skip a read; when in doubt, the sweep reads.
 */
final class TierLedger {

    static final String PREFIX = ObjectKeys.STATE + "tier/ledger/";
    private static final String SUFFIX = ".json.gz";
    private static final String INCOMPLETE = ".incomplete";
    private static final int VERSION = 1;

    /**
     * A ledger as read.
     *
     * @param seq its sequence number (0: there is none)
     * @param complete whether the sweep that read it finished (no {@code .incomplete} marker)
     * @param tags the tag of each chunk ("" for none)
     * @param rewarm chunks a point needs that were archived, awaiting their copy back
     */
    record Read(
            long seq,
            boolean complete,
            Optional<Instant> writtenAt,
            Optional<Instant> fullReadAt,
            Map<String, String> tags,
            Set<String> rewarm) {

        static final Read NONE = new Read(0, false, Optional.empty(), Optional.empty(), Map.of(), Set.of());

        /** Whether its tags may stand in for tag reads at {@code now}; if not, why not. */
        Optional<String> distrust(Instant now, Duration maxGap, Duration fullReadEvery) {
            if (seq == 0 || writtenAt.isEmpty() || fullReadAt.isEmpty()) {
                return Optional.of("no ledger");
            }
            if (!complete) {
                return Optional.of("the sweep after ledger " + seq + " did not finish");
            }
            if (writtenAt.get().plus(maxGap).isBefore(now)) {
                return Optional.of("ledger older than " + maxGap);
            }
            if (fullReadAt.get().plus(fullReadEvery).isBefore(now)) {
                return Optional.of("last full read older than " + fullReadEvery);
            }
            return Optional.empty();
        }
    }

    private TierLedger() {}

    /** The newest ledger at {@code target}; {@link Read#NONE} when there is none or it is unreadable. */
    static Read read(ObjectTarget target) {
        List<String> keys = target.list(PREFIX);
        String newest = null;
        for (String k : keys) {
            if (k.endsWith(SUFFIX)) {
                newest = k; // listings are sorted; fixed-width numbers sort by value
            }
        }
        if (newest == null) {
            return Read.NONE;
        }
        long seq = seqOf(newest);
        boolean complete = !keys.contains(PREFIX + seqKey(seq) + INCOMPLETE);
        Optional<byte[]> bytes = target.get(newest);
        if (bytes.isEmpty()) {
            return Read.NONE;
        }
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(bytes.get()))) {
            JsonNode n = Json.mapper().readTree(in);
            if (n.path("version").asInt() != VERSION) {
                return new Read(seq, false, Optional.empty(), Optional.empty(), Map.of(), Set.of());
            }
            Map<String, String> tags = new HashMap<>();
            n.path("tags").fields().forEachRemaining(e -> e.getValue().forEach(k -> tags.put(k.asText(), e.getKey())));
            Set<String> rewarm = new TreeSet<>();
            n.path("rewarm").forEach(k -> rewarm.add(k.asText()));
            return new Read(
                    seq,
                    complete,
                    Optional.of(Instant.parse(n.path("writtenAt").asText())),
                    Optional.of(Instant.parse(n.path("fullReadAt").asText())),
                    tags,
                    rewarm);
        } catch (IOException | RuntimeException e) {
            // an unreadable ledger is no ledger: the sweep reads every tag
            return Read.NONE;
        }
    }

    /** Marks {@code read} as not to be trusted until a sweep finishes (before the first tag write). */
    static void markIncomplete(ObjectTarget target, Read read) {
        if (read.seq() > 0) {
            target.putIfAbsent(PREFIX + seqKey(read.seq()) + INCOMPLETE, new byte[0]);
        }
    }

    /** Writes the ledger after {@code previous} and removes the older ones. */
    static void write(
            ObjectTarget target,
            Read previous,
            Instant writtenAt,
            Instant fullReadAt,
            Map<String, String> tags,
            Collection<String> rewarm) {
        // streamed, not built as a tree: a target of 10⁶ chunks makes a ledger of ~37 MB gzip'd
        Map<String, List<String>> byClass = new TreeMap<>();
        tags.forEach((k, v) ->
                byClass.computeIfAbsent(v, c -> new java.util.ArrayList<>()).add(k));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(bytes);
                com.fasterxml.jackson.core.JsonGenerator g =
                        Json.mapper().getFactory().createGenerator(gz)) {
            g.writeStartObject();
            g.writeNumberField("version", VERSION);
            g.writeStringField("writtenAt", writtenAt.toString());
            g.writeStringField("fullReadAt", fullReadAt.toString());
            g.writeObjectFieldStart("tags");
            for (Map.Entry<String, List<String>> e : byClass.entrySet()) {
                g.writeArrayFieldStart(e.getKey());
                List<String> keys = e.getValue();
                java.util.Collections.sort(keys);
                for (String k : keys) {
                    g.writeString(k);
                }
                g.writeEndArray();
            }
            g.writeEndObject();
            g.writeArrayFieldStart("rewarm");
            for (String k : new TreeSet<>(rewarm)) {
                g.writeString(k);
            }
            g.writeEndArray();
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        long seq = previous.seq() + 1;
        List<String> before = target.list(PREFIX);
        String key = PREFIX + seqKey(seq) + SUFFIX;
        if (!target.putIfAbsent(key, bytes.toByteArray())) {
            // a ledger of this number exists (a sweep that lost the lock wrote it): ours is not kept
            throw new io.tidemark.core.RetriableException("the tier ledger " + key + " at " + target.describe()
                    + " was written by another sweep; the next sweep reads every tag");
        }
        for (String old : before) {
            target.delete(old);
        }
    }

    private static String seqKey(long seq) {
        return String.format("%019d", seq);
    }

    private static long seqOf(String key) {
        String name = key.substring(PREFIX.length());
        return Long.parseLong(name.substring(0, name.indexOf('.')));
    }
}
