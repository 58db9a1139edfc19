package io.tidemark.workers.mirror;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.target.ObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes each protected VM's {@link MirrorRecord} where the DR site can read it at failover (ADR
 * 22): on the first check, whenever a disk's phase changes, and within every {@code heartbeat}
 * while nothing changes (not on every 250 ms poll of the mirror). Reads the mirror states from memory
 * ({@code states}), so it never waits for QEMU. Each new record is a new object (the targets are
 * put-if-absent); the one it replaces is deleted after, so a location holds one or two records per
 * VM. A location that fails is logged once per VM until it works again and retried at the next
 * check; the other locations and VMs go on.
 *
 * <p>One thread; {@link #close()} stops it (the records stay: the last one says when the engine was
 * last heard).
 */
public final class MirrorRecorder implements AutoCloseable {

    /** How often a VM's record is rewritten while its mirror phases do not change. */
    public static final Duration DEFAULT_HEARTBEAT = Duration.ofSeconds(2);

    /** How often the states are looked at for a phase change. */
    public static final Duration CHECK = Duration.ofMillis(250);

    private static final Logger log = LoggerFactory.getLogger(MirrorRecorder.class);

    /** Where one VM's record goes, and under which policy; empty when the VM is no longer protected. */
    public record Destination(String policy, List<ObjectTarget> targets) {
        public Destination {
            targets = List.copyOf(targets);
        }
    }

    private final Supplier<List<MirrorState>> states;
    private final Function<String, Optional<Destination>> destinations;
    private final Clock clock;
    private final Duration heartbeat;
    private final ScheduledExecutorService loop =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("mirror-records"));
    /** Per VM: the last record written to every location. Only the loop thread touches it. */
    private final Map<String, MirrorRecord> written = new HashMap<>();
    /** Per VM and location: the key of the record written there last (to delete once replaced). */
    private final Map<String, String> lastKey = new HashMap<>();
    /** Per VM and location: the last failure logged. */
    private final Map<String, String> failing = new HashMap<>();

    /**
     * @param states the newest state of every protected disk, from memory
     * @param destinations by VM: its policy and the locations its record goes to
     */
    public MirrorRecorder(
            Supplier<List<MirrorState>> states,
            Function<String, Optional<Destination>> destinations,
            Clock clock,
            Duration heartbeat) {
        this.states = states;
        this.destinations = destinations;
        this.clock = clock;
        this.heartbeat = heartbeat;
    }

    /** Checks every {@link #CHECK} on a thread of its own. */
    public void start() {
        loop.scheduleWithFixedDelay(this::checkQuietly, 0, CHECK.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void checkQuietly() {
        try {
            check();
        } catch (RuntimeException e) { // the next check tries again; a bug here must not end the loop
            log.warn("writing the mirror state records failed (next check in a moment): {}", e.toString());
        }
    }

    /** One check: writes the records that are due. Returns the records written. */
    public synchronized List<MirrorRecord> check() {
        Map<String, List<MirrorState>> byVm = new TreeMap<>();
        for (MirrorState s : states.get()) {
            byVm.computeIfAbsent(s.vm(), k -> new ArrayList<>()).add(s);
        }
        written.keySet().retainAll(byVm.keySet());
        Instant now = clock.instant();
        List<MirrorRecord> out = new ArrayList<>();
        for (Map.Entry<String, List<MirrorState>> e : byVm.entrySet()) {
            Optional<Destination> to = destinations.apply(e.getKey());
            if (to.isEmpty()) {
                continue;
            }
            MirrorRecord record = new MirrorRecord(
                    e.getKey(),
                    to.get().policy(),
                    now,
                    heartbeat,
                    e.getValue().stream().map(MirrorRecord.Disk::of).toList());
            MirrorRecord before = written.get(e.getKey());
            boolean due = before == null
                    || !before.phases().equals(record.phases())
                    // one check early, so the next record is written within one heartbeat of the last
                    || Duration.between(before.writtenAt(), now).compareTo(heartbeat.minus(CHECK)) >= 0;
            if (due && write(record, to.get().targets())) {
                written.put(e.getKey(), record);
                out.add(record);
            }
        }
        return out;
    }

    /** Writes {@code record} to every location; true when every one took it. */
    private boolean write(MirrorRecord record, List<ObjectTarget> targets) {
        boolean all = true;
        byte[] bytes = record.toJson();
        for (ObjectTarget t : targets) {
            String where = record.vm() + "@" + t.describe();
            try {
                t.putIfAbsent(record.key(), bytes);
                String previous = lastKey.put(where, record.key());
                if (previous == null) {
                    // first write of this process: records an earlier engine left behind go
                    for (String k : t.list(MirrorRecord.prefix(record.vm()))) {
                        if (k.compareTo(record.key()) < 0) {
                            t.delete(k);
                        }
                    }
                } else if (!previous.equals(record.key())) {
                    t.delete(previous);
                }
                if (failing.remove(where) != null) {
                    log.info("mirror state record of {} written again to {}", record.vm(), t.describe());
                }
            } catch (RetriableException | PermanentException e) {
                all = false;
                String was = failing.put(where, e.getMessage());
                if (!e.getMessage().equals(was)) {
                    log.warn(
                            "cannot write the mirror state record of {} to {} (retried every {} ms; the DR site's"
                                    + " failover will see an older record): {}",
                            record.vm(),
                            t.describe(),
                            CHECK.toMillis(),
                            e.getMessage());
                }
            }
        }
        return all;
    }

    @Override
    public void close() {
        loop.shutdownNow();
    }
}
