package io.tidemark.engine;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The newest drill result of every VM at every location (the local repository and each target). */
public final class DrillResults {

    private static final Logger log = LoggerFactory.getLogger(DrillResults.class);

    private DrillResults() {}

    static List<DrillRecord> read(ObjectTarget primary, Map<String, ObjectTarget> targets) {
        List<DrillRecord> out = new ArrayList<>(new DrillLog(primary).latestPerVm());
        targets.values().forEach(t -> out.addAll(new DrillLog(t).latestPerVm()));
        return out;
    }

    /**
     * {@link #read} at most once per {@code ttl} (a scrape must not list every target each time);
     * when a location cannot be read, the last answer stands and the fault is logged.
     */
    public static Supplier<List<DrillRecord>> cached(
            ObjectTarget primary, Map<String, ObjectTarget> targets, Clock clock, Duration ttl) {
        return new Supplier<>() {
            private List<DrillRecord> last = List.of();
            private Instant readAt = Instant.MIN;

            @Override
            public synchronized List<DrillRecord> get() {
                Instant now = clock.instant();
                if (readAt.equals(Instant.MIN) || Duration.between(readAt, now).compareTo(ttl) >= 0) {
                    readAt = now;
                    try {
                        last = read(primary, targets);
                    } catch (TidemarkException e) {
                        log.warn("drill results not refreshed: {}", e.getMessage());
                    }
                }
                return last;
            }
        };
    }

    /**
     * The newest drill results, refreshed every {@code interval} on a thread of its own: each
     * location is read with a single attempt (no retry wrapper) and at most {@code timeout}; a
     * location that fails or does not answer keeps its last answer and the fault is logged once. What
     * {@link Background#get()} returns is always in memory, so a scrape never waits for a target.
     */
    static Background inBackground(
            ObjectTarget primary, Map<String, ObjectTarget> targets, Duration interval, Duration timeout) {
        Map<String, ObjectTarget> locations = new java.util.LinkedHashMap<>();
        locations.put(io.tidemark.scheduler.RpoTracker.LOCAL, primary);
        targets.forEach((name, t) ->
                locations.put(name, t instanceof io.tidemark.targets.RetryingObjectTarget r ? r.delegate() : t));
        return new Background(locations, interval, timeout);
    }

    /** Drill results kept current in the background; see {@link #inBackground}. */
    static final class Background implements Supplier<List<DrillRecord>>, AutoCloseable {
        private final Map<String, ObjectTarget> locations;
        private final Duration timeout;
        private final Map<String, List<DrillRecord>> last = new java.util.concurrent.ConcurrentHashMap<>();
        private final Map<String, java.util.concurrent.Future<List<DrillRecord>>> reading =
                new java.util.concurrent.ConcurrentHashMap<>();
        private final Map<String, String> failing = new java.util.concurrent.ConcurrentHashMap<>();
        private final java.util.concurrent.ScheduledExecutorService schedule;
        private final java.util.concurrent.ExecutorService reads;

        private Background(Map<String, ObjectTarget> locations, Duration interval, Duration timeout) {
            this.locations = locations;
            this.timeout = timeout;
            this.schedule = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
                    DaemonThreads.named("drill-results"));
            this.reads = java.util.concurrent.Executors.newCachedThreadPool(DaemonThreads.named("drill-results-read"));
            schedule.scheduleWithFixedDelay(
                    this::refresh, 0, interval.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        }

        @Override
        public List<DrillRecord> get() {
            List<DrillRecord> out = new ArrayList<>();
            locations.keySet().forEach(l -> out.addAll(last.getOrDefault(l, List.of())));
            return out;
        }

        /** Reads every location once (not overlapping a read of the same location still running). */
        void refresh() {
            locations.forEach((name, target) -> {
                java.util.concurrent.Future<List<DrillRecord>> f = reading.get(name);
                if (f == null || f.isDone()) {
                    f = reads.submit(() -> new DrillLog(target).latestPerVm());
                    reading.put(name, f);
                }
                try {
                    last.put(name, f.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS));
                    if (failing.remove(name) != null) {
                        log.info("drill results of {} readable again", name);
                    }
                } catch (java.util.concurrent.TimeoutException e) {
                    fault(name, target.describe() + " did not answer within " + timeout.toSeconds() + " s");
                } catch (java.util.concurrent.ExecutionException e) {
                    fault(name, String.valueOf(e.getCause().getMessage()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }

        private void fault(String location, String message) {
            if (!message.equals(failing.put(location, message))) {
                log.warn("drill results of {} not refreshed (the last ones stand): {}", location, message);
            }
        }

        @Override
        public void close() {
            schedule.shutdownNow();
            reads.shutdownNow();
        }
    }
}
