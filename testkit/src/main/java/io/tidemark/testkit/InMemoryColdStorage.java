package io.tidemark.testkit;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An in-memory object store with storage classes that models an archive tier's delay: objects in
 * {@code GLACIER} or {@code DEEP_ARCHIVE} cannot be read until a restore was requested and {@code
 * restoreDelay} has passed on {@code clock}; the restored copy then lasts the requested days. Tags
 * and a lifecycle pass ({@link #runLifecycle}) model the tag-filtered transition rules Tidemark
 * puts on S3 buckets. For unit tests and the tier benchmark (RGW and S3Proxy have no restore).
 * Thread-safe.
 */
public final class InMemoryColdStorage implements ObjectTarget, ColdStorage {

    private static final Set<String> ARCHIVE = Set.of("GLACIER", "DEEP_ARCHIVE");

    private final InMemoryObjectTarget objects;
    private final Clock clock;
    private final Duration restoreDelay;
    private final Map<String, String> classes = new ConcurrentHashMap<>();
    private final Map<String, String> tags = new ConcurrentHashMap<>();
    private final Map<String, Instant> restoreReady = new ConcurrentHashMap<>();
    private final Map<String, Duration> restoreLasts = new ConcurrentHashMap<>();
    private final AtomicInteger restoreRequests = new AtomicInteger();
    private final AtomicInteger heads = new AtomicInteger();
    private final AtomicInteger tagReads = new AtomicInteger();
    private final AtomicInteger rewarms = new AtomicInteger();

    public InMemoryColdStorage(Clock clock, Duration restoreDelay) {
        this.objects = new InMemoryObjectTarget("archive-model");
        this.clock = clock;
        this.restoreDelay = restoreDelay;
    }

    /** Moves {@code key} to {@code storageClass} at once (what a lifecycle transition does). */
    public void transition(String key, String storageClass) {
        if (!objects.exists(key)) {
            throw new IllegalArgumentException("no object " + key);
        }
        classes.put(key, storageClass);
        restoreReady.remove(key);
    }

    /**
     * One lifecycle pass: every object under {@code prefix} tagged {@link #TIER_TAG} = a class moves
     * to that class.
     *
     * @return how many objects moved
     */
    public int runLifecycle(String prefix) {
        int moved = 0;
        for (Map.Entry<String, String> t : tags.entrySet()) {
            if (t.getKey().startsWith(prefix) && !t.getValue().equals(classes.get(t.getKey()))) {
                transition(t.getKey(), t.getValue());
                moved++;
            }
        }
        return moved;
    }

    /** How many restores were requested (repeats of a pending one included). */
    public int restoreRequests() {
        return restoreRequests.get();
    }

    /** How many placements were asked for. */
    public int heads() {
        return heads.get();
    }

    @Override
    public Placement placement(String key) {
        heads.incrementAndGet();
        if (!objects.exists(key)) {
            throw new PermanentException("no object " + key + " in " + describe());
        }
        String sc = classes.getOrDefault(key, "STANDARD");
        if (!ARCHIVE.contains(sc)) {
            return new Placement(sc, Readability.READABLE, Optional.empty());
        }
        Instant ready = restoreReady.get(key);
        Instant now = clock.instant();
        if (ready == null) {
            return new Placement(sc, Readability.ARCHIVED, Optional.empty());
        }
        if (now.isBefore(ready)) {
            return new Placement(sc, Readability.RESTORING, Optional.empty());
        }
        Instant until = ready.plus(restoreLasts.get(key));
        if (!now.isBefore(until)) {
            restoreReady.remove(key);
            return new Placement(sc, Readability.ARCHIVED, Optional.empty());
        }
        return new Placement(sc, Readability.RESTORED, Optional.of(until));
    }

    @Override
    public void requestRestore(String key, int days) {
        restoreRequests.incrementAndGet();
        if (!ARCHIVE.contains(classes.getOrDefault(key, "STANDARD"))) {
            throw new PermanentException("restore of " + key + ": InvalidObjectState (not in an archive class)");
        }
        restoreReady.putIfAbsent(key, clock.instant().plus(restoreDelay));
        restoreLasts.put(key, Duration.ofDays(days));
    }

    @Override
    public void tagTier(String key, Optional<String> storageClass) {
        if (storageClass.isPresent()) {
            tags.put(key, storageClass.get());
        } else {
            tags.remove(key);
        }
    }

    @Override
    public void rewarm(String key) {
        if (!placement(key).readable()) {
            throw new PermanentException("copy of " + key + ": InvalidObjectState (archived, not restored)");
        }
        rewarms.incrementAndGet();
        classes.remove(key);
        restoreReady.remove(key);
    }

    /** How many tag reads ({@link #tierTag}) were answered. */
    public int tagReads() {
        return tagReads.get();
    }

    /** How many archived objects {@link #rewarm} copied back. */
    public int rewarms() {
        return rewarms.get();
    }

    @Override
    public Optional<String> tierTag(String key) {
        tagReads.incrementAndGet();
        return Optional.ofNullable(tags.get(key));
    }

    @Override
    public String describe() {
        return "archive-model (restore delay " + restoreDelay + ")";
    }

    @Override
    public boolean putIfAbsent(String key, byte[] data) {
        return objects.putIfAbsent(key, data);
    }

    /** Fails like S3 ({@code InvalidObjectState}) for an archived object that is not restored. */
    @Override
    public Optional<byte[]> get(String key) {
        if (objects.exists(key) && !placement(key).readable()) {
            throw new PermanentException("S3 read of " + key + " failed: HTTP 403 InvalidObjectState (the object is in "
                    + classes.get(key) + "); restore it first (docs/runbooks/cold-restore.md)");
        }
        return objects.get(key);
    }

    @Override
    public boolean exists(String key) {
        return objects.exists(key);
    }

    @Override
    public List<String> list(String prefix) {
        return objects.list(prefix);
    }

    @Override
    public void delete(String key) {
        objects.delete(key);
        classes.remove(key);
        tags.remove(key);
        restoreReady.remove(key);
    }

    @Override
    public void close() {}
}
