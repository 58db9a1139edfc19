package io.tidemark.engine;

import io.tidemark.core.event.Event;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The newest job events of every VM, in memory, for the status page: what {@link JobHistory}
 * records, handed over as it is written, and at start-up seeded from the history on disk (on a
 * thread of its own, so the page answers meanwhile). Bounded: at most {@link #PER_VM} events per
 * VM (the oldest are forgotten); an event seen twice (redelivery, or both the seed and the bus) is
 * kept once.
 */
final class RecentJobs {

    /** Events kept per VM: some 50 jobs (a job has 2 to 4 events plus one per target). */
    static final int PER_VM = 256;

    private static final Comparator<Event> ORDER =
            Comparator.comparing(Event::time).thenComparing(Event::eventId);

    private final Map<String, TreeSet<Event>> byVm = new HashMap<>(); // guarded by this
    private final Map<String, Set<String>> ids = new HashMap<>(); // guarded by this
    private volatile boolean seeded;

    /** Keeps {@code event} if the history records its kind. */
    synchronized void add(Event event) {
        if (!JobHistory.recorded(event)) {
            return;
        }
        String vm = event.payload().vm();
        Set<String> known = ids.computeIfAbsent(vm, v -> new java.util.HashSet<>());
        if (!known.add(event.eventId())) {
            return;
        }
        TreeSet<Event> events = byVm.computeIfAbsent(vm, v -> new TreeSet<>(ORDER));
        events.add(event);
        while (events.size() > PER_VM) {
            known.remove(events.pollFirst().eventId());
        }
    }

    /** Keeps every event of {@code history} (oldest first), then notes that the seed is done. */
    void seed(List<Event> history) {
        history.forEach(this::add);
        seeded = true;
    }

    /** True once the history on disk has been read (or there was none to read). */
    boolean seeded() {
        return seeded;
    }

    /** Marks the seed done without one (no history on this process). */
    void noHistory() {
        seeded = true;
    }

    /** Per VM, its jobs ({@link JobRuns#of}) from the kept events, oldest first. */
    synchronized Map<String, List<JobRuns.Run>> runs() {
        Map<String, List<JobRuns.Run>> out = new TreeMap<>();
        byVm.forEach((vm, events) -> out.put(vm, JobRuns.of(new ArrayList<>(events))));
        return out;
    }
}
