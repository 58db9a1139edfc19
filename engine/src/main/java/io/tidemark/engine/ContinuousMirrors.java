package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.scheduler.VmPlacement;
import io.tidemark.workers.mirror.ContinuousProtection;
import io.tidemark.workers.mirror.DrTls;
import io.tidemark.workers.mirror.MirrorLagWatch;
import io.tidemark.workers.mirror.MirrorState;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker's continuous-protection loop (ADR 19): converges this host's mirrors onto the
 * continuous policies. Each round, every VM of this host that a {@code mode: continuous} policy
 * selects is protected (its disks mirrored to the policy's {@code dr.nbd}); a VM whose policy is no
 * longer continuous, or whose export changed, is unprotected (and re-protected with the new export).
 *
 * <p>One VM's failure (a QEMU without the mirror's features, an unreachable DR export, a replica of
 * another size) is recorded for that VM, logged once per distinct message, and retried next round;
 * it never stops the other VMs nor the engine. Status and metrics read memory only. {@link #close()}
 * stops supervising and leaves the mirrors running in QEMU, so the next engine adopts them.
 */
final class ContinuousMirrors implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ContinuousMirrors.class);

    private final String host;
    private final Inventory inventory;
    private final Path qmpDir;
    private final ContinuousProtection protection;
    private final DrPointSchedule drPoints;
    private final ScheduledExecutorService loop =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("continuous-protection"));
    /** What is protected now, by VM. Only the loop thread (or the start) writes it. */
    private final Map<String, ContinuousProtection.Protected> running = new ConcurrentHashMap<>();
    /** The last start-up failure of each VM not protected, by VM. */
    private final Map<String, String> failures = new ConcurrentHashMap<>();

    private volatile PolicySet policies;

    ContinuousMirrors(
            String host,
            Inventory inventory,
            Path qmpDir,
            PolicySet policies,
            ContinuousProtection protection,
            java.time.Clock clock) {
        this.drPoints = new DrPointSchedule(protection, clock);
        this.host = host;
        this.inventory = inventory;
        this.qmpDir = qmpDir;
        this.policies = policies;
        this.protection = protection;
    }

    /**
     * Reconciles at once, then every {@code interval}, on a thread of its own: the engine's start
     * never waits for a VM's monitor or a DR export.
     */
    void start(Duration interval) {
        loop.scheduleWithFixedDelay(this::reconcileQuietly, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
        drPoints.start(DR_POINT_TICK);
    }

    /** How often the DR points' thread checks whose point is due. */
    static final Duration DR_POINT_TICK = Duration.ofSeconds(1);

    /** The policies after a reload; applied at the next round. */
    void setPolicies(PolicySet next) {
        this.policies = next;
    }

    private void reconcileQuietly() {
        try {
            reconcile();
        } catch (RuntimeException e) { // the next round tries again; a bug here must not end the loop
            log.warn("continuous protection round failed (next round in a moment): {}", e.toString());
        }
    }

    /** One round: what the continuous policies want on this host, compared with what runs. */
    synchronized void reconcile() {
        Map<String, ContinuousProtection.Protected> wanted = wanted();
        for (Map.Entry<String, ContinuousProtection.Protected> was :
                Map.copyOf(running).entrySet()) {
            ContinuousProtection.Protected want = wanted.get(was.getKey());
            if (want == null || !want.equals(was.getValue())) {
                stop(
                        was.getKey(),
                        want == null ? "no continuous policy selects it on this host" : "its policy changed");
            }
        }
        failures.keySet().retainAll(wanted.keySet());
        for (ContinuousProtection.Protected want : wanted.values()) {
            if (!running.containsKey(want.vm())) {
                protect(want);
            }
        }
        // the protected VMs whose policy takes DR points on its schedule
        Map<String, DrPointSchedule.Vm> points = new TreeMap<>();
        for (ContinuousProtection.Protected p : running.values()) {
            policies.continuous().stream()
                    .filter(c -> c.name().equals(p.policy())
                            && c.continuous().orElseThrow().points().isPresent())
                    .findFirst()
                    .ifPresent(c -> points.put(p.vm(), new DrPointSchedule.Vm(p.vm(), p.qmpSocket(), c)));
        }
        drPoints.set(points);
    }

    /** The DR points' schedule of this host's protected VMs (status, metrics, tests). */
    DrPointSchedule drPoints() {
        return drPoints;
    }

    private Map<String, ContinuousProtection.Protected> wanted() {
        Map<String, ContinuousProtection.Protected> out = new TreeMap<>();
        List<Policy> continuous = policies.continuous();
        if (continuous.isEmpty()) {
            return out;
        }
        for (VmPlacement vm : inventory.all()) {
            if (!vm.placement().host().equals(host)) {
                continue;
            }
            for (Policy p : continuous) { // in name order: the first continuous policy that selects the VM
                if (p.vms().matches(vm.vm(), vm.placement().labels())) {
                    out.put(
                            vm.vm(),
                            new ContinuousProtection.Protected(
                                    vm.vm(),
                                    qmpDir.resolve(vm.vm() + ".qmp"),
                                    p.name(),
                                    p.rpo(),
                                    p.continuous().orElseThrow().drNbd(),
                                    p.continuous()
                                            .orElseThrow()
                                            .tls()
                                            .map(t -> new DrTls(Path.of(t.dir()), t.hostname()))));
                    break;
                }
            }
        }
        return out;
    }

    private void protect(ContinuousProtection.Protected want) {
        try {
            protection.protect(want);
            running.put(want.vm(), want);
            failures.remove(want.vm());
            log.info(
                    "continuous protection of {} (policy {}) to {} started",
                    want.vm(),
                    want.policy(),
                    want.drUriTemplate());
        } catch (PermanentException | RetriableException e) {
            // this VM only: the others and the engine go on; retried every round until it works
            String before = failures.put(want.vm(), e.getMessage());
            if (!e.getMessage().equals(before)) {
                log.error(
                        "continuous protection of {} (policy {}) could not start, retrying every round: {}",
                        want.vm(),
                        want.policy(),
                        e.getMessage());
            }
        }
    }

    /**
     * Stops a VM's mirror; the VM counts as protected until QEMU has ended the job (a cancelled ready
     * mirror first copies what is still dirty), so status never shows it unprotected while it still is.
     */
    private void stop(String vm, String why) {
        try {
            protection.unprotect(vm);
            log.info("continuous protection of {} stopped: {}", vm, why);
        } catch (PermanentException | RetriableException e) { // the VM's QEMU is gone: nothing left to stop
            log.warn(
                    "continuous protection of {} stopped ({}), its mirror could not be cancelled: {}",
                    vm,
                    why,
                    e.getMessage());
        } finally {
            running.remove(vm);
        }
    }

    /** The VMs protected now. */
    List<String> protectedVms() {
        return List.copyOf(new TreeMap<>(running).keySet());
    }

    /** The last start-up failure of each VM that should be protected but is not, from memory. */
    Map<String, String> failures() {
        return Map.copyOf(failures);
    }

    /** The newest state of every mirrored disk, from memory. */
    List<MirrorState> states() {
        List<MirrorState> out = protection.status();
        return out.stream().filter(s -> running.containsKey(s.vm())).toList();
    }

    /** The continuous policy that protects {@code vm} now, if any (for its mirror state record, ADR 22). */
    Optional<Policy> policyOf(String vm) {
        return Optional.ofNullable(running.get(vm)).flatMap(p -> policies.find(p.policy()));
    }

    /** The largest lag of a VM's disks, if it is protected and measured. */
    Optional<Duration> lag(String vm) {
        return states().stream()
                .filter(s -> s.vm().equals(vm))
                .map(MirrorState::lag)
                .max(Duration::compareTo);
    }

    /**
     * One status row per protected VM at location {@code dr-mirror} (for the status page, beside the
     * restore-point locations): age = the largest lag of its disks, newest = when all its disks were
     * last seen in sync, violated = lag above the policy's RPO.
     */
    List<RpoTracker.Status> statusRows() {
        List<MirrorState> states = states();
        List<RpoTracker.Status> rows = new java.util.ArrayList<>();
        for (ContinuousProtection.Protected p : new TreeMap<>(running).values()) {
            List<MirrorState> mine =
                    states.stream().filter(s -> s.vm().equals(p.vm())).toList();
            if (mine.isEmpty()) {
                continue;
            }
            Duration lag =
                    mine.stream().map(MirrorState::lag).max(Duration::compareTo).orElseThrow();
            Optional<Instant> newest = mine.stream()
                            .allMatch(s -> s.lastInSync().isPresent())
                    ? mine.stream().map(s -> s.lastInSync().orElseThrow()).min(Instant::compareTo)
                    : Optional.empty();
            rows.add(new RpoTracker.Status(
                    p.vm(),
                    MirrorLagWatch.LOCATION,
                    p.policy(),
                    p.rpo(),
                    newest,
                    Optional.of(lag),
                    lag.compareTo(p.rpo()) > 0,
                    lag));
        }
        rows.addAll(drPoints.statusRows());
        return rows;
    }

    /**
     * Each protected VM's state at its {@code dr-mirror} and {@code dr-points} locations, keyed
     * {@code vm@location}, for the status page: the mirror's worst phase with its largest lag
     * ({@code in_sync lag 0s}, {@code outage lag 12s}), and the DR points' count or why the last one
     * failed. From memory.
     */
    Map<String, String> locationStates() {
        Map<String, String> out = new TreeMap<>();
        Map<String, List<MirrorState>> byVm = new TreeMap<>();
        states().forEach(s ->
                byVm.computeIfAbsent(s.vm(), k -> new java.util.ArrayList<>()).add(s));
        byVm.forEach((vm, ss) -> {
            MirrorState worst = ss.stream()
                    .max(java.util.Comparator.comparingInt((MirrorState s) -> severity(s.phase()))
                            .thenComparing(MirrorState::lag))
                    .orElseThrow();
            Duration lag =
                    ss.stream().map(MirrorState::lag).max(Duration::compareTo).orElseThrow();
            out.put(
                    StatusPage.Sources.stateKey(vm, MirrorLagWatch.LOCATION),
                    worst.phase().name().toLowerCase(java.util.Locale.ROOT) + " lag "
                            + io.tidemark.core.Human.duration(lag));
        });
        for (String vm : running.keySet()) {
            drPoints.failure(vm)
                    .ifPresentOrElse(
                            f -> out.put(StatusPage.Sources.stateKey(vm, DrPointSchedule.LOCATION), "failing: " + f),
                            () -> {
                                if (drPoints.count(vm) > 0) {
                                    out.put(
                                            StatusPage.Sources.stateKey(vm, DrPointSchedule.LOCATION),
                                            drPoints.count(vm) + " points");
                                }
                            });
        }
        return out;
    }

    private static int severity(MirrorState.Phase phase) {
        return switch (phase) {
            case IN_SYNC -> 0;
            case SYNCING -> 1;
            case UNKNOWN -> 2;
            case OUTAGE -> 3;
        };
    }

    /** Prometheus lines: the mirrors' lag and in-sync gauges, and one failure gauge per VM. */
    String metrics() {
        // the watch's format, for the disks of VMs protected now (a stopped mirror's last state is not a gauge)
        List<MirrorState> states = states();
        StringBuilder b = new StringBuilder();
        b.append(
                "# HELP tidemark_mirror_lag_seconds Age of the oldest guest write the DR mirror may lack (0 in sync)\n");
        b.append("# TYPE tidemark_mirror_lag_seconds gauge\n");
        states.forEach(s -> b.append("tidemark_mirror_lag_seconds{vm=\"")
                .append(s.vm())
                .append("\",disk=\"")
                .append(s.disk())
                .append("\"} ")
                .append(s.lag().toMillis() / 1000.0)
                .append('\n'));
        b.append("# HELP tidemark_mirror_in_sync 1 while every completed guest write is at the DR site\n");
        b.append("# TYPE tidemark_mirror_in_sync gauge\n");
        states.forEach(s -> b.append("tidemark_mirror_in_sync{vm=\"")
                .append(s.vm())
                .append("\",disk=\"")
                .append(s.disk())
                .append("\"} ")
                .append(s.inSync() ? 1 : 0)
                .append('\n'));
        b.append("# HELP tidemark_mirror_start_failed 1 while a continuous policy's VM could not be protected\n");
        b.append("# TYPE tidemark_mirror_start_failed gauge\n");
        Map<String, Integer> all = new TreeMap<>();
        running.keySet().forEach(vm -> all.put(vm, 0));
        failures.keySet().forEach(vm -> all.put(vm, 1));
        all.forEach((vm, failed) -> b.append("tidemark_mirror_start_failed{vm=\"")
                .append(vm)
                .append("\"} ")
                .append(failed)
                .append('\n'));
        b.append(drPoints.metrics());
        return b.toString();
    }

    /** Stops the loop and the supervisors; the mirrors keep running in QEMU for the next engine. */
    @Override
    public void close() {
        loop.shutdownNow();
        drPoints.close();
        synchronized (this) {
            protection.close();
            running.clear();
        }
    }
}
