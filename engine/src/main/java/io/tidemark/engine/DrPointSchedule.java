package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.policies.FireTimes;
import io.tidemark.policies.Policy;
import io.tidemark.policies.Schedule;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.workers.mirror.ContinuousProtection;
import io.tidemark.workers.mirror.DrVmPoints;
import io.tidemark.workers.mirror.MirrorState;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
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
 * DR points on a continuous policy's {@code schedule} (ADR 19): for every protected VM whose
 * policy has {@code dr.qmp} and {@code dr.points}, a point of all its disks at one instant ({@link
 * DrVmPoints}) when the schedule is due, then the policy's {@code dr.keep}. The cadence continues
 * across restarts from the newest point on disk (an interval schedule is due one interval after it;
 * a cron schedule at its next time after it, at once if that passed while the engine was down). A
 * point that fails (the DR daemon down, a copy error) is logged once per distinct reason, counted,
 * shown as violated on the status page's {@code dr-points} row, and retried after {@link #RETRY}
 * (or the schedule's interval, if shorter). Runs on one thread of its own, one VM at a time (a
 * host's points share its DR link); status and metrics read memory only.
 */
final class DrPointSchedule implements AutoCloseable {

    /** The status page's location of the DR points' row. */
    static final String LOCATION = "dr-points";

    /** How soon a failed point is retried (at most: a shorter interval retries at its own pace). */
    static final Duration RETRY = Duration.ofSeconds(10);

    private static final Logger log = LoggerFactory.getLogger(DrPointSchedule.class);

    /** A protected VM whose policy takes DR points. */
    record Vm(String vm, Path qmpSocket, Policy policy) {
        Policy.DrPoints points() {
            return policy.continuous().orElseThrow().points().orElseThrow();
        }
    }

    /** What is known of one VM's points, from memory. */
    private static final class State {
        final Vm vm;
        volatile Instant next;
        volatile Optional<Instant> newest = Optional.empty();
        volatile int count;
        volatile boolean failing;
        volatile String lastError = "";
        volatile long failures;
        volatile Optional<Duration> lastDuration = Optional.empty();

        State(Vm vm) {
            this.vm = vm;
        }
    }

    private final ContinuousProtection protection;
    private final Clock clock;
    private final ScheduledExecutorService loop =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("dr-points"));
    private final Map<String, State> states = new ConcurrentHashMap<>();
    private volatile Map<String, Vm> wanted = Map.of();

    DrPointSchedule(ContinuousProtection protection, Clock clock) {
        this.protection = protection;
        this.clock = clock;
    }

    /** Checks every {@code tick} which VM's point is due. */
    void start(Duration tick) {
        loop.scheduleWithFixedDelay(this::tickQuietly, tick.toMillis(), tick.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** The protected VMs that take DR points now (from the continuous-protection round). */
    void set(Map<String, Vm> vms) {
        this.wanted = Map.copyOf(vms);
        states.keySet().retainAll(vms.keySet());
        // a changed policy (schedule, directory, keep) starts from the files again
        vms.forEach((vm, v) -> states.computeIfPresent(vm, (k, s) -> s.vm.equals(v) ? s : null));
    }

    private void tickQuietly() {
        try {
            tick();
        } catch (RuntimeException e) { // a bug here must not end the loop: the next tick tries again
            log.warn("DR point round failed (next in a moment): {}", e.toString());
        }
    }

    /** One round: each VM whose point is due takes it. */
    synchronized void tick() {
        for (Vm v : new TreeMap<>(wanted).values()) {
            State s = states.get(v.vm());
            Map<String, MirrorState> disks = disks(v);
            if (disks.isEmpty()) {
                continue; // not protected (yet): the mirrors' round starts it
            }
            if (s == null) {
                s = new State(v);
                List<DrVmPoints.Point> all = points(v, disks).list(); // once: the DR site's directories
                Optional<Instant> newest = newest(all);
                s.newest = newest;
                s.count = all.size();
                s.next = newest.map(t -> after(v.policy(), t)).orElse(clock.instant());
                states.put(v.vm(), s);
                log.info(
                        "DR points of {} (policy {}): {}, next at {}",
                        v.vm(),
                        v.policy().name(),
                        newest.map(t -> "newest " + t).orElse("none yet"),
                        s.next);
            }
            if (!clock.instant().isBefore(s.next)) {
                take(s);
            }
        }
    }

    private void take(State s) {
        Vm v = s.vm;
        Map<String, MirrorState> disks = protection.disks(v.vm());
        if (disks.isEmpty()) {
            return; // not protected (yet): the mirrors' round starts it
        }
        Instant started = clock.instant();
        try {
            DrVmPoints points = points(v, disks);
            DrVmPoints.Point p = points.take(disks);
            s.lastDuration = Optional.of(Duration.between(started, clock.instant()));
            s.newest = Optional.of(p.createdAt());
            if (s.failing) {
                log.info("DR points of {} work again: {} taken", v.vm(), p.id());
            }
            s.failing = false;
            s.lastError = "";
            s.next = after(v.policy(), p.createdAt());
            try {
                points.prune(v.points().keep()::keep);
            } catch (PermanentException | RetriableException | java.io.UncheckedIOException e) {
                log.warn(
                        "DR points of {}: retention could not drop old points (retried after the next): {}",
                        v.vm(),
                        e.getMessage());
            }
            s.count = count(v);
        } catch (PermanentException | RetriableException | java.io.UncheckedIOException e) {
            s.failures++;
            String message = String.valueOf(e.getMessage());
            if (!s.failing || !message.equals(s.lastError)) {
                log.error(
                        "DR point of {} (policy {}) failed, retrying in {}: {}",
                        v.vm(),
                        v.policy().name(),
                        io.tidemark.core.Human.duration(retry(v.policy())),
                        message);
            }
            s.failing = true;
            s.lastError = message;
            s.next = clock.instant().plus(retry(v.policy()));
        }
    }

    private Map<String, MirrorState> disks(Vm v) {
        return protection.disks(v.vm());
    }

    private int count(Vm v) {
        Map<String, MirrorState> disks = disks(v);
        return disks.isEmpty() ? 0 : points(v, disks).list().size();
    }

    private static Optional<Instant> newest(List<DrVmPoints.Point> all) {
        return all.isEmpty()
                ? Optional.empty()
                : Optional.of(all.get(all.size() - 1).createdAt());
    }

    /** The VM's points, its disks' replicas from the policy's templates. */
    private DrVmPoints points(Vm v, Map<String, MirrorState> disks) {
        Policy.DrPoints cfg = v.points();
        List<DrVmPoints.Disk> out = new ArrayList<>();
        for (String disk : disks.keySet()) {
            out.add(new DrVmPoints.Disk(
                    disk, cfg.qmpOf(v.vm(), disk), cfg.nodeOf(v.vm(), disk), cfg.dirOf(v.vm(), disk)));
        }
        return new DrVmPoints(v.vm(), v.qmpSocket(), out, clock);
    }

    /** When the schedule is due after a point at {@code t}. */
    static Instant after(Policy policy, Instant t) {
        if (policy.schedule() instanceof Schedule.Interval interval) {
            return t.plus(interval.every());
        }
        List<Instant> next = FireTimes.next(policy, t, 1);
        return next.isEmpty() ? Instant.MAX : next.get(0);
    }

    /** The schedule's period: the interval, or the gap between a cron expression's next two times. */
    static Duration period(Policy policy, Instant now) {
        if (policy.schedule() instanceof Schedule.Interval interval) {
            return interval.every();
        }
        List<Instant> next = FireTimes.next(policy, now, 2);
        return next.size() < 2 ? Duration.ofDays(365) : Duration.between(next.get(0), next.get(1));
    }

    private Duration retry(Policy policy) {
        Duration period = period(policy, clock.instant());
        return period.compareTo(RETRY) < 0 ? period : RETRY;
    }

    /**
     * One row per VM taking DR points, at location {@code dr-points}: newest = its newest point,
     * age = now minus it, rpo = twice the schedule's period (a point missed), violated when the last
     * attempt failed or the newest point is older than that.
     */
    List<RpoTracker.Status> statusRows() {
        Instant now = clock.instant();
        List<RpoTracker.Status> rows = new ArrayList<>();
        for (State s : new TreeMap<>(states).values()) {
            Duration objective = period(s.vm.policy(), now).multipliedBy(2);
            Optional<Duration> age = s.newest.map(t -> Duration.between(t, now));
            boolean late = age.map(a -> a.compareTo(objective) > 0).orElse(false);
            rows.add(new RpoTracker.Status(
                    s.vm.vm(),
                    LOCATION,
                    s.vm.policy().name(),
                    objective,
                    s.newest,
                    age,
                    s.failing || late,
                    age.orElse(Duration.ZERO)));
        }
        return rows;
    }

    /** Why the VM's last DR point failed, if it did (from memory). */
    Optional<String> failure(String vm) {
        State s = states.get(vm);
        return s == null || !s.failing ? Optional.empty() : Optional.of(s.lastError);
    }

    /** How many points the VM has, as last counted (from memory). */
    int count(String vm) {
        State s = states.get(vm);
        return s == null ? 0 : s.count;
    }

    /** Prometheus lines of the DR points, from memory. */
    String metrics() {
        Instant now = clock.instant();
        Map<String, State> all = new TreeMap<>(states);
        StringBuilder b = new StringBuilder();
        gauge(
                b,
                "tidemark_dr_point_last_success_timestamp_seconds",
                "Creation time of the newest DR point of every disk of the VM (epoch seconds)",
                all,
                s -> s.newest
                        .map(t -> Double.toString(t.toEpochMilli() / 1000.0))
                        .orElse(null));
        gauge(b, "tidemark_dr_point_age_seconds", "Age of the newest DR point of the VM", all, s -> s.newest
                .map(t -> Double.toString(Duration.between(t, now).toMillis() / 1000.0))
                .orElse(null));
        gauge(
                b,
                "tidemark_dr_point_failing",
                "1 while the VM's last scheduled DR point failed",
                all,
                s -> s.failing ? "1" : "0");
        b.append("# HELP tidemark_dr_point_failures_total DR points of the VM that failed since the engine started\n");
        b.append("# TYPE tidemark_dr_point_failures_total counter\n");
        all.forEach((vm, s) -> b.append("tidemark_dr_point_failures_total{vm=\"")
                .append(vm)
                .append("\"} ")
                .append(s.failures)
                .append('\n'));
        gauge(b, "tidemark_dr_point_duration_seconds", "How long the VM's last DR point took", all, s -> s.lastDuration
                .map(d -> Double.toString(d.toMillis() / 1000.0))
                .orElse(null));
        gauge(b, "tidemark_dr_points", "DR points of the VM kept at the DR site", all, s -> Integer.toString(s.count));
        return b.toString();
    }

    private static void gauge(
            StringBuilder b,
            String name,
            String help,
            Map<String, State> all,
            java.util.function.Function<State, String> value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(" gauge\n");
        all.forEach((vm, s) -> {
            String v = value.apply(s);
            if (v != null) {
                b.append(name)
                        .append("{vm=\"")
                        .append(vm)
                        .append("\"} ")
                        .append(v)
                        .append('\n');
            }
        });
    }

    @Override
    public void close() {
        loop.shutdownNow();
        try {
            loop.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
