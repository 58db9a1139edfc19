package io.tidemark.replicator;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.Repository;
import io.tidemark.targets.RetryingObjectTarget;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The periodic reconciliation of every replication target with the primary: events make
 * replication fast, this makes it right. Per target, on a thread of its own:
 *
 * <ul>
 *   <li>a <b>probe</b> every {@link Settings#probeInterval()}: one call to the target without the
 *       retry wrapper, answered within {@link Settings#probeTimeout()} or counted as down. Health
 *       and metrics report its outcome; no round lists or ships while the target is down.
 *   <li>a <b>round</b> every {@link Settings#interval()}, and at once when a probe finds a down
 *       target back: per VM whose policy names the target, the restore points the target lacks
 *       ({@link ReplicaGap}: dead-lettered, missed during an outage, or older than the target) are
 *       shipped oldest first through {@link Replicator#replicate}, manifest last as always, and
 *       announced with {@code ReplicaCommitted}.
 * </ul>
 *
 * <p>A round is idempotent: a point the target holds is not sent again. It never ships a VM to a
 * target while the event-driven path does ({@link Replicator} holds a lock per target and VM), so
 * whichever comes second finds the manifest there and sends nothing. Rounds of one target never
 * overlap. What is missing is kept in memory ({@link #states()}), counted from the last listing
 * of the target plus what was shipped since, so status, metrics and health never call a target.
 */
public final class Reconciler implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Reconciler.class);

    /**
     * When to reconcile and probe.
     *
     * @param interval how often every target is compared with the primary
     * @param probeInterval how often every target is probed
     * @param probeTimeout how long a probe may take before the target counts as down
     */
    public record Settings(Duration interval, Duration probeInterval, Duration probeTimeout) {
        public Settings {
            for (Duration d : List.of(interval, probeInterval, probeTimeout)) {
                if (d.isNegative() || d.isZero()) {
                    throw new IllegalArgumentException("reconcile intervals and timeouts must be positive, was " + d);
                }
            }
        }

        /** Reconcile every minute; probe every 10 s with a 5 s timeout. */
        public static Settings defaults() {
            return new Settings(Duration.ofMinutes(1), Duration.ofSeconds(10), Duration.ofSeconds(5));
        }

        public Settings withInterval(Duration interval) {
            return new Settings(interval, probeInterval, probeTimeout);
        }
    }

    /**
     * What is known about one target, kept in memory.
     *
     * @param target the target's name
     * @param probedAt when the last probe ended, if one has
     * @param reachable whether the last probe got an answer in time
     * @param probeError why the last probe failed (never a secret), and what to do
     * @param reconciledAt when the last round that reached the target ended
     * @param missingByVm per VM, how many restore points the target lacks (VMs with none left out)
     * @param oldestMissingCapturedAt the snapshot moment of the oldest point the target lacks
     * @param shipped how many points rounds shipped since start
     * @param lastError the last failure of a round, if any
     * @param missingBytes the new bytes (chunks first stored by each point in the primary) of the
     *     points the target lacks: what shipping them moves at most
     */
    public record TargetState(
            String target,
            Optional<Instant> probedAt,
            boolean reachable,
            Optional<String> probeError,
            Optional<Instant> reconciledAt,
            Map<String, Integer> missingByVm,
            Optional<Instant> oldestMissingCapturedAt,
            long shipped,
            Optional<String> lastError,
            long missingBytes) {
        public TargetState {
            missingByVm = Map.copyOf(missingByVm);
        }

        /** A state without the bytes of what the target lacks. */
        public TargetState(
                String target,
                Optional<Instant> probedAt,
                boolean reachable,
                Optional<String> probeError,
                Optional<Instant> reconciledAt,
                Map<String, Integer> missingByVm,
                Optional<Instant> oldestMissingCapturedAt,
                long shipped,
                Optional<String> lastError) {
            this(
                    target,
                    probedAt,
                    reachable,
                    probeError,
                    reconciledAt,
                    missingByVm,
                    oldestMissingCapturedAt,
                    shipped,
                    lastError,
                    0);
        }

        /** How many restore points the target lacks, over all VMs. */
        public int missing() {
            return missingByVm.values().stream().mapToInt(Integer::intValue).sum();
        }

        static TargetState initial(String target) {
            return new TargetState(
                    target,
                    Optional.empty(),
                    false,
                    Optional.of("not probed yet"),
                    Optional.empty(),
                    Map.of(),
                    Optional.empty(),
                    0,
                    Optional.empty());
        }
    }

    /** What one round did. */
    public record Round(String target, int shipped, int missing, boolean reachedTarget) {}

    private final Replicator replicator;
    private final Clock clock;
    private final Settings settings;
    private volatile PolicySet policies;
    private final Map<String, TargetState> states = new ConcurrentHashMap<>();
    /** Per target and VM, the ids the target holds: its last listing plus what was shipped since. */
    private final Map<String, Map<String, Set<String>>> known = new ConcurrentHashMap<>();

    private final Map<String, ScheduledExecutorService> rounds = new LinkedHashMap<>();
    private final ScheduledExecutorService probes;
    private final ExecutorService probeCalls;
    private final Map<String, AtomicBoolean> probing = new ConcurrentHashMap<>();

    public Reconciler(Replicator replicator, PolicySet policies, Clock clock, Settings settings) {
        this.replicator = Objects.requireNonNull(replicator, "replicator");
        this.policies = Objects.requireNonNull(policies, "policies");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.settings = Objects.requireNonNull(settings, "settings");
        for (String name : replicator.targetNames()) {
            states.put(name, TargetState.initial(name));
            known.put(name, new ConcurrentHashMap<>());
            probing.put(name, new AtomicBoolean());
        }
        this.probes = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("target-probe"));
        this.probeCalls = Executors.newCachedThreadPool(DaemonThreads.named("target-probe-call"));
    }

    /** Starts probing and reconciling every target in the background. */
    public void start() {
        for (String name : replicator.targetNames()) {
            ScheduledExecutorService executor =
                    Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("reconcile-" + name));
            rounds.put(name, executor);
            executor.scheduleWithFixedDelay(
                    () -> roundQuietly(name), 0, settings.interval().toMillis(), TimeUnit.MILLISECONDS);
        }
        probes.scheduleWithFixedDelay(
                () -> replicator.targetNames().forEach(this::probeQuietly),
                0,
                settings.probeInterval().toMillis(),
                TimeUnit.MILLISECONDS);
    }

    public void setPolicies(PolicySet policies) {
        this.policies = Objects.requireNonNull(policies, "policies");
    }

    /** The state of every target, from memory. */
    public Map<String, TargetState> states() {
        return new TreeMap<>(states);
    }

    /**
     * Probes {@code name} once, on the calling thread, and returns whether it answered within the
     * probe timeout. A probe still hanging from before counts as no answer and starts no other.
     */
    public boolean probe(String name) {
        ObjectTarget target = replicator.target(name).orElseThrow();
        ObjectTarget raw = target instanceof RetryingObjectTarget r ? r.delegate() : target;
        AtomicBoolean busy = probing.get(name);
        if (!busy.compareAndSet(false, true)) {
            return probed(name, false, "the previous probe of " + target.describe() + " has not answered yet");
        }
        Future<Boolean> call = probeCalls.submit(() -> {
            try {
                return raw.exists(ObjectKeys.CONFIG);
            } finally {
                busy.set(false);
            }
        });
        try {
            call.get(settings.probeTimeout().toMillis(), TimeUnit.MILLISECONDS);
            return probed(name, true, null);
        } catch (TimeoutException e) {
            call.cancel(false); // an interrupt would not stop every client; the next probe sees it still running
            return probed(
                    name,
                    false,
                    target.describe() + " did not answer within "
                            + settings.probeTimeout().toSeconds()
                            + " s; check that it is up and reachable from this host");
        } catch (ExecutionException e) {
            return probed(
                    name,
                    false,
                    e.getCause().getMessage()
                            + (e.getCause() instanceof PermanentException
                                    ? "; check the target's settings and credentials in the engine config"
                                    : "; check that the target is up and reachable from this host"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private boolean probed(String name, boolean ok, String error) {
        TargetState before = states.get(name);
        states.compute(
                name,
                (k, s) -> new TargetState(
                        k,
                        Optional.of(clock.instant()),
                        ok,
                        Optional.ofNullable(error),
                        s.reconciledAt(),
                        s.missingByVm(),
                        s.oldestMissingCapturedAt(),
                        s.shipped(),
                        s.lastError(),
                        s.missingBytes()));
        if (ok && !before.reachable()) {
            if (before.probedAt().isPresent()) {
                log.info("target {} answers again: reconciling it now", name);
            }
            ScheduledExecutorService executor = rounds.get(name);
            if (executor != null && !executor.isShutdown()) {
                executor.execute(() -> roundQuietly(name));
            }
        } else if (!ok && before.reachable()) {
            log.warn("target {} is unreachable: {}", name, error);
        }
        return ok;
    }

    /**
     * One round for {@code name} on the calling thread: counts what the target lacks and, unless
     * the last probe found it down, ships it.
     */
    public Round reconcile(String name) {
        ObjectTarget target = replicator.target(name).orElseThrow();
        Repository primary = replicator.primary();
        PolicySet policySet = policies;
        boolean reachable =
                states.get(name).reachable() || states.get(name).probedAt().isEmpty();
        boolean listed = false;
        Map<String, Set<String>> there = known.get(name);
        Map<String, Integer> missingByVm = new TreeMap<>();
        Instant oldest = null;
        long bytesMissing = 0;
        int shipped = 0;
        String error = null;
        for (String vm : primary.vms()) {
            List<Manifest> points = primary.manifests(vm);
            if (!ReplicaGap.policyFor(policySet, vm, points)
                    .map(p -> p.targets().contains(name))
                    .orElse(false)) {
                continue;
            }
            if (reachable) {
                try {
                    there.put(vm, ids(target, vm));
                    listed = true;
                } catch (RetriableException e) {
                    reachable = false;
                    error = "listing " + target.describe() + " failed: " + e.getMessage();
                }
            }
            Set<String> held = there.computeIfAbsent(vm, k -> ConcurrentHashMap.newKeySet());
            List<Manifest> missing = ReplicaGap.missing(policySet, name, vm, points, primary.marks(vm), held);
            List<Manifest> left = new java.util.ArrayList<>(missing);
            for (Manifest m : missing) {
                if (!reachable) {
                    break;
                }
                try {
                    Replicator.Result r = replicator.replicate(vm, m.id(), name);
                    if (!r.alreadyThere() && !r.pruned()) {
                        replicator.announce(m.jobId(), vm, m.id(), name, m.capturedAt(), r);
                        shipped++;
                        log.info("reconciliation shipped {} of {} to {}, which lacked it", m.id(), vm, name);
                    }
                    held.add(m.id());
                    left.remove(m);
                } catch (RetriableException e) {
                    reachable = false;
                    error = "shipping " + m.id() + " of " + vm + " failed: " + e.getMessage();
                } catch (PermanentException e) {
                    error = e.getMessage();
                    log.warn("reconciliation of {} cannot ship {} of {}: {}", name, m.id(), vm, e.getMessage());
                }
            }
            if (!left.isEmpty()) {
                missingByVm.put(vm, left.size());
                bytesMissing += left.stream().mapToLong(Manifest::bytesNew).sum();
                Instant first = left.get(0).capturedAt();
                oldest = oldest == null || first.isBefore(oldest) ? first : oldest;
            }
        }
        boolean reached = listed && error == null;
        String failure = error;
        Instant oldestMissing = oldest;
        long total = shipped;
        long backlogBytes = bytesMissing;
        states.compute(
                name,
                (k, s) -> new TargetState(
                        k,
                        s.probedAt(),
                        s.reachable(),
                        s.probeError(),
                        reached ? Optional.of(clock.instant()) : s.reconciledAt(),
                        missingByVm,
                        Optional.ofNullable(oldestMissing),
                        s.shipped() + total,
                        failure == null && reached
                                ? Optional.empty()
                                : Optional.ofNullable(failure).or(s::lastError),
                        backlogBytes));
        if (failure != null) {
            log.warn("reconciliation of {} stopped: {}; it resumes with the next round", name, failure);
        }
        return new Round(
                name,
                shipped,
                missingByVm.values().stream().mapToInt(Integer::intValue).sum(),
                reached);
    }

    /** The restore point ids of {@code vm} on {@code target}, from its manifest keys. */
    private static Set<String> ids(ObjectTarget target, String vm) {
        Set<String> out = ConcurrentHashMap.newKeySet();
        for (String key : target.list(ObjectKeys.manifestPrefix(vm))) {
            String id = ObjectKeys.restorePointIdOf(key);
            if (id != null) {
                out.add(id);
            }
        }
        return out;
    }

    private void roundQuietly(String name) {
        try {
            reconcile(name);
        } catch (RuntimeException e) { // the loop must outlive a failed round; the state says why
            log.warn("reconciliation round of {} failed: {}", name, e.getMessage(), e);
            states.computeIfPresent(
                    name,
                    (k, s) -> new TargetState(
                            k,
                            s.probedAt(),
                            s.reachable(),
                            s.probeError(),
                            s.reconciledAt(),
                            s.missingByVm(),
                            s.oldestMissingCapturedAt(),
                            s.shipped(),
                            Optional.of(String.valueOf(e.getMessage())),
                            s.missingBytes()));
        }
    }

    private void probeQuietly(String name) {
        try {
            probe(name);
        } catch (RuntimeException e) { // a probe must never stop the probing of the others
            probed(name, false, String.valueOf(e.getMessage()));
        }
    }

    @Override
    public void close() {
        probes.shutdownNow();
        probeCalls.shutdownNow();
        rounds.values().forEach(ExecutorService::shutdownNow);
    }

    /** For tests: the ids of {@code vm} the reconciler believes {@code target} holds. */
    Set<String> knownOn(String target, String vm) {
        return new HashSet<>(known.get(target).getOrDefault(vm, Set.of()));
    }
}
