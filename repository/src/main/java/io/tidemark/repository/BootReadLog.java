package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Boot-read traces kept on a target as mutable state ({@code
 * state/boot-reads/<vm>/<disk>/<trace-id>.json}, see {@link ObjectKeys}): plain JSON, also in
 * encrypted repositories (chunk numbers, no data). The port only offers put-if-absent, so every
 * trace gets a key of its own (ids sort by time) and the newest {@value #KEEP} per disk are kept.
 * A trace is a hint: losing one costs only the prefetch.
 */
public final class BootReadLog {

    /** How many traces per VM and disk are kept. */
    public static final int KEEP = 3;

    /** The most chunk numbers a trace may hold (≈ 30 KiB of JSON; 1 GiB of 256 KiB chunks). */
    public static final int MAX_CHUNKS = 4096;

    private final ObjectTarget target;

    public BootReadLog(ObjectTarget target) {
        this.target = target;
    }

    /** Stores {@code t}, then drops the oldest traces of its disk beyond {@value #KEEP}. */
    public void record(BootReadTrace t) {
        if (t.chunks().size() > MAX_CHUNKS) {
            throw new IllegalArgumentException("a boot-read trace holds at most " + MAX_CHUNKS + " chunks, not "
                    + t.chunks().size());
        }
        String id = String.format(Locale.ROOT, "%013d-%s", t.at().toEpochMilli(), t.restorePoint());
        try {
            target.putIfAbsent(
                    ObjectKeys.bootReads(t.vm(), t.disk(), id), Json.mapper().writeValueAsBytes(t));
        } catch (IOException e) {
            throw new IllegalStateException("a boot-read trace cannot be serialised", e);
        }
        List<String> keys = target.list(ObjectKeys.bootReadsPrefix(t.vm(), t.disk()));
        for (int i = 0; i < keys.size() - KEEP; i++) {
            target.delete(keys.get(i));
        }
    }

    /**
     * The newest trace of disk {@code disk} of {@code vm}, if there is one.
     *
     * @throws PermanentException if the newest trace is unreadable, of another version or too long
     *     (callers treat it as no trace)
     */
    public Optional<BootReadTrace> latest(String vm, String disk) {
        List<String> keys = target.list(ObjectKeys.bootReadsPrefix(vm, disk));
        for (int i = keys.size() - 1; i >= 0; i--) {
            Optional<byte[]> bytes = target.get(keys.get(i));
            if (bytes.isPresent()) {
                return Optional.of(parse(keys.get(i), bytes.get()));
            }
        }
        return Optional.empty();
    }

    private BootReadTrace parse(String key, byte[] bytes) {
        BootReadTrace t;
        try {
            t = Json.mapper().readValue(bytes, BootReadTrace.class);
        } catch (IOException | IllegalArgumentException e) {
            throw unusable(key, "it is unreadable: " + e.getMessage(), e);
        }
        if (t.version() != BootReadTrace.VERSION) {
            throw unusable(key, "its version is " + t.version() + ", this engine reads " + BootReadTrace.VERSION, null);
        }
        if (t.chunks() == null || t.chunks().size() > MAX_CHUNKS || t.chunkSize() <= 0) {
            throw unusable(key, "it lists more than " + MAX_CHUNKS + " chunks or no chunk size", null);
        }
        return t;
    }

    private PermanentException unusable(String key, String why, Exception cause) {
        return new PermanentException(
                "boot-read trace " + key + " in " + target.describe() + " cannot be used: " + why
                        + "; delete it (it is state, not backup data; the next instant restore writes a new one)",
                cause);
    }
}
