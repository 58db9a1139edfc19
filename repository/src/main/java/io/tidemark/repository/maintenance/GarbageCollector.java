package io.tidemark.repository.maintenance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;

/**
 * Two-phase mark-and-sweep garbage collection of one repository's chunks, pages and roots,
 * designed for targets that offer neither modification times nor overwrites.
 *
 * <p>Each run marks everything the manifests reference; every other object is a <em>candidate</em>,
 * recorded in {@code state/gc/candidates/<epoch>.json} with the time a run first saw it
 * unreferenced (the record also holds when each writer lease was first seen: all ageing is
 * measured by the collector's own clock, so no two machines' clocks are ever compared). An object is swept only when an earlier run recorded it as a candidate at least
 * {@code grace} ago, it has stayed one since, and a second mark, taken right before the sweep,
 * still finds no manifest referencing it. Objects written before their manifest (an in-flight
 * backup or replication) therefore survive for at least the grace period; and the sweep itself
 * never overlaps a writer, by the {@link WriteLease} handshake. A {@link GcLock} keeps two
 * collections apart.
 *
 * <p>If a mark meets a manifest, root or page it cannot read, it cannot know what that references,
 * so the run stops before sweeping anything: run {@link Verifier} and repair first.
 */
public final class GarbageCollector {

    static final String CANDIDATES = ObjectKeys.STATE + "gc/candidates/";

    /**
     * @param grace how long an object must have been a candidate before it is swept; longer than
     *     the longest backup, replication or restore
     * @param lockTtl how long the GC lock (and a sweep announcement) lasts before others may take over
     * @param writerWait how long a sweep waits for running writers to finish before it is put off
     * @param writerTtl a writer lease that collection runs have seen for this long (by the
     *     collector's own clock, so writers' clocks do not matter) is stale: its writer died
     */
    public record Settings(Duration grace, Duration lockTtl, Duration writerWait, Duration writerTtl) {
        public static final Duration DEFAULT_GRACE = Duration.ofHours(24);

        /** {@code grace}, a 6 h lock, 10 min of waiting for writers, writer leases stale after 48 h. */
        public static Settings withGrace(Duration grace) {
            return new Settings(grace, Duration.ofHours(6), Duration.ofMinutes(10), Duration.ofHours(48));
        }
    }

    /**
     * What a run did.
     *
     * @param manifests restore points marked
     * @param objects chunks, pages and roots on the target
     * @param candidates unreferenced objects recorded for a later sweep (after this run)
     * @param swept the objects deleted (with {@code dryRun}: that would have been deleted)
     * @param referencedAgain due candidates that a manifest committed since referenced, kept
     * @param locked due candidates under an immutability lock, kept
     * @param deferred why the sweep was put off, if it was
     */
    public record Result(
            int manifests,
            long objects,
            long candidates,
            List<String> swept,
            long referencedAgain,
            long locked,
            Optional<String> deferred,
            boolean dryRun) {
        public Result {
            swept = List.copyOf(swept);
        }

        /** How many of the swept keys start with {@code prefix} ({@link ObjectKeys#CHUNKS}...). */
        public long swept(String prefix) {
            return swept.stream().filter(k -> k.startsWith(prefix)).count();
        }
    }

    private final Repository repository;
    private final ObjectTarget target;
    private final Clock clock;
    private final Settings settings;

    public GarbageCollector(Repository repository, Clock clock, Settings settings) {
        this.repository = repository;
        this.target = repository.target();
        this.clock = clock;
        this.settings = settings;
    }

    /**
     * One collection run.
     *
     * @param dryRun record nothing and delete nothing; report what would be swept now
     * @param progress (done, total) in manifests of the first mark
     * @throws RetriableException if another collection holds the lock
     * @throws PermanentException if a manifest, root or page cannot be read (nothing is swept)
     */
    public Result run(boolean dryRun, Restorer.Progress progress) {
        String owner = "gc " + UUID.randomUUID().toString().substring(0, 8) + " on " + host();
        try (GcLock lock = dryRun ? null : GcLock.acquire(target, clock, settings.lockTtl(), owner)) {
            if (lock != null) {
                removeAnnouncementsOfEarlierLocks(lock);
            }
            Instant now = clock.instant();
            References marked = References.mark(repository, null, progress::update);
            requireComplete(marked);
            List<String> objects = new ArrayList<>();
            objects.addAll(target.list(ObjectKeys.ROOTS));
            objects.addAll(target.list(ObjectKeys.PAGES));
            objects.addAll(target.list(ObjectKeys.CHUNKS));
            State previousState = readState();
            Map<String, Instant> previous = previousState.candidates;
            Map<String, Instant> leasesSeen = new TreeMap<>();
            for (String k : target.list(WriteLease.PREFIX)) {
                leasesSeen.put(k, previousState.leases.getOrDefault(k, now));
            }
            Map<String, Instant> candidates = new TreeMap<>();
            List<String> due = new ArrayList<>();
            for (String key : objects) {
                if (marked.references(key)) {
                    continue;
                }
                Instant firstSeen = previous.getOrDefault(key, now);
                candidates.put(key, firstSeen);
                if (previous.containsKey(key)
                        && !firstSeen.plus(settings.grace()).isAfter(now)) {
                    due.add(key);
                }
            }
            if (dryRun) {
                return new Result(
                        marked.points().size(), objects.size(), candidates.size(), due, 0, 0, Optional.empty(), true);
            }
            Sweep sweep = due.isEmpty() ? new Sweep() : sweep(lock, due, candidates, leasesSeen);
            writeState(lock, candidates, leasesSeen);
            return new Result(
                    marked.points().size(),
                    objects.size(),
                    candidates.size(),
                    sweep.swept,
                    sweep.referencedAgain,
                    sweep.locked,
                    Optional.ofNullable(sweep.deferred),
                    false);
        }
    }

    private static final class Sweep {
        final List<String> swept = new ArrayList<>();
        long referencedAgain;
        long locked;
        String deferred;
    }

    private Sweep sweep(GcLock lock, List<String> due, Map<String, Instant> candidates, Map<String, Instant> seen) {
        Sweep s = new Sweep();
        Instant now = clock.instant();
        String announcement = WriteLease.SWEEPS + lock.epochKey() + ".json";
        target.putIfAbsent(announcement, Leases.encode("gc sweep", now, now.plus(settings.lockTtl())));
        try {
            if (!Leases.await(() -> liveWriters(seen).isEmpty(), settings.writerWait())) {
                s.deferred = "writers still running after " + settings.writerWait() + ": " + liveWriters(seen)
                        + "; the due candidates stay recorded and the next run sweeps them";
                return s;
            }
            // the second mark: whatever a writer committed since the first one is referenced again
            References again = References.mark(repository, null, References.ProgressListener.NONE);
            requireComplete(again);
            if (!lock.stillHeld()) {
                throw new RetriableException("garbage collection of " + target.describe() + " ran past its lock's"
                        + " expiry and another collection took over; nothing was swept. Raise the lock TTL");
            }
            Instant at = clock.instant();
            for (String key : due) {
                if (again.references(key)) {
                    candidates.remove(key);
                    s.referencedAgain++;
                    continue;
                }
                Optional<Instant> until = target.retainUntil(key);
                if (until.isPresent() && until.get().isAfter(at)) {
                    s.locked++;
                    continue;
                }
                target.delete(key);
                candidates.remove(key);
                s.swept.add(key);
            }
            return s;
        } finally {
            target.delete(announcement);
        }
    }

    /**
     * A collection that died mid-sweep left its announcement behind; holding the lock now, this one
     * knows that collection is over, and writers need not wait out the announcement's lifetime.
     */
    private void removeAnnouncementsOfEarlierLocks(GcLock lock) {
        String own = WriteLease.SWEEPS + lock.epochKey();
        for (String k : target.list(WriteLease.SWEEPS)) {
            if (k.compareTo(own) < 0) {
                target.delete(k);
            }
        }
    }

    /**
     * The writers whose leases are not stale. A lease is stale once collection runs have seen it
     * for {@code writerTtl}; one that appeared during this run is first seen now.
     */
    private List<String> liveWriters(Map<String, Instant> seen) {
        Instant now = clock.instant();
        List<String> out = new ArrayList<>();
        for (String k : target.list(WriteLease.PREFIX)) {
            Instant first = seen.computeIfAbsent(k, x -> now);
            if (first.plus(settings.writerTtl()).isAfter(now)) {
                Leases.read(target, k).ifPresent(l -> out.add(l.owner() + " since " + l.startedAt()));
            }
        }
        return out;
    }

    private void requireComplete(References marked) {
        List<Problem> problems = marked.problems();
        if (!problems.isEmpty()) {
            Problem first = problems.get(0);
            throw new PermanentException("garbage collection of " + target.describe() + " stopped before sweeping: "
                    + problems.size() + " manifest/index object(s) cannot be read (first: " + first.key() + ", "
                    + first.kind() + "), so what they reference is unknown. Run `tidemark verify` on this"
                    + " target and repair it, then run gc again");
        }
    }

    /** What the newest state record holds: the candidates and the writer leases, each with when a run first saw it. */
    private record State(Map<String, Instant> candidates, Map<String, Instant> leases) {}

    private State readState() {
        List<String> records = target.list(CANDIDATES);
        State out = new State(new TreeMap<>(), new TreeMap<>());
        if (records.isEmpty()) {
            return out;
        }
        String key = records.get(records.size() - 1);
        Optional<byte[]> bytes = target.get(key);
        if (bytes.isEmpty()) {
            return out;
        }
        try {
            JsonNode n = Json.mapper().readTree(bytes.get());
            readTimes(n.path("candidates"), out.candidates);
            readTimes(n.path("writerLeases"), out.leases);
        } catch (IOException | RuntimeException e) {
            // mutable state, not data: a damaged record only restarts the candidates' ageing
            throw new CorruptObjectException(
                    key, "unreadable GC state record (" + e.getMessage() + "); delete it to start ageing afresh");
        }
        return out;
    }

    private static void readTimes(JsonNode n, Map<String, Instant> into) {
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            into.put(e.getKey(), Instant.parse(e.getValue().asText()));
        }
    }

    private void writeState(GcLock lock, Map<String, Instant> candidates, Map<String, Instant> leases) {
        ObjectNode root = Json.mapper().createObjectNode();
        root.put("writtenAt", clock.instant().toString());
        ObjectNode c = root.putObject("candidates");
        candidates.forEach((k, v) -> c.put(k, v.toString()));
        ObjectNode l = root.putObject("writerLeases");
        leases.forEach((k, v) -> l.put(k, v.toString()));
        String key = CANDIDATES + lock.epochKey() + ".json";
        target.putIfAbsent(key, root.toString().getBytes(StandardCharsets.UTF_8));
        for (String old : target.list(CANDIDATES)) {
            if (old.compareTo(key) < 0) {
                target.delete(old);
            }
        }
    }

    private static String host() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown host";
        }
    }
}
