package io.tidemark.scheduler;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.RpoViolated;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The RPO watchdog. The RPO of a VM at a location ({@code local} or a target's name) is now minus
 * the snapshot moment of its newest restore point committed there. The tracker learns restore
 * points from the bus (and from repositories when it starts), measures every VM its policies select
 * at every location they require, and raises {@link RpoViolated} once when a violation starts.
 *
 * <p>Which VMs it measures is kept in memory: {@link #refreshInventory()} (on a background thread;
 * it may be slow, as listing a hypervisor asks every VM) adds what the inventory lists, and a VM
 * stays measured until the inventory has not listed it for {@link #FORGET_AFTER}. So a VM that a
 * listing skips because its monitor does not answer (its jobs stuck, the VM starved) keeps being
 * measured and raises its violation; {@link #status()} and {@link #check} never call the inventory
 * once it has been read. A VM with no restore point at a location is measured from when the tracker
 * first saw it.
 */
public final class RpoTracker {

    /** The location name of the primary repository. */
    public static final String LOCAL = "local";

    private static final Logger log = LoggerFactory.getLogger(RpoTracker.class);

    /**
     * How long a VM the inventory stops listing is still measured: long enough that a VM skipped
     * because it does not answer raises its violation; a VM deleted for good stops being measured.
     */
    public static final Duration FORGET_AFTER = Duration.ofHours(24);

    /**
     * One VM at one location, measured at {@code now}.
     *
     * @param age now minus the newest point's snapshot moment; empty when there is no point
     * @param without how long the location has been without a point newer than the RPO allows to
     *     measure: {@code age} when there is a point, else the time since the tracker first saw the VM
     */
    public record Status(
            String vm,
            String location,
            String policy,
            Duration rpo,
            Optional<Instant> newestCapturedAt,
            Optional<Duration> age,
            boolean violated,
            Duration without) {}

    private final Inventory inventory;
    private final Clock clock;
    private final Instant startedAt;
    private volatile PolicySet policies;
    private final Map<String, Instant> newest = new ConcurrentHashMap<>();
    private final Set<String> violating = ConcurrentHashMap.newKeySet();
    /** Every VM measured, with its labels; replaced as a whole by {@link #refreshInventory()}. */
    private volatile Map<String, VmPlacement> measured = Map.of();

    private volatile boolean listed;
    private final Map<String, Instant> lastListed = new ConcurrentHashMap<>();
    private final Map<String, Instant> firstSeen = new ConcurrentHashMap<>();

    public RpoTracker(PolicySet policies, Inventory inventory, Clock clock) {
        this.policies = policies;
        this.inventory = inventory;
        this.clock = clock;
        this.startedAt = clock.instant();
    }

    public void setPolicies(PolicySet policies) {
        this.policies = policies;
    }

    /** Notes that {@code vm} has a restore point captured at {@code capturedAt} at {@code location}. */
    public void record(String vm, String location, Instant capturedAt) {
        firstSeen.putIfAbsent(vm, clock.instant());
        newest.merge(key(vm, location), capturedAt, (a, b) -> a.isAfter(b) ? a : b);
    }

    /** The bus handler for {@code tidemark.restore-points} and {@code tidemark.replication}. */
    public void handle(String topic, Event event) {
        if (event.payload() instanceof RestorePointCreated c) {
            record(c.vm(), LOCAL, c.capturedAt());
        } else if (event.payload() instanceof ReplicaCommitted r) {
            record(r.vm(), r.target(), r.capturedAt());
        }
    }

    /**
     * Reads the inventory and updates which VMs are measured. May block as long as the inventory
     * does: call it from a background thread. A failed read changes nothing.
     */
    public void refreshInventory() {
        List<VmPlacement> all = inventory.all();
        Instant now = clock.instant();
        synchronized (this) {
            Map<String, VmPlacement> next = new java.util.TreeMap<>(measured);
            for (VmPlacement vm : all) {
                lastListed.put(vm.vm(), now);
                firstSeen.putIfAbsent(vm.vm(), now);
                next.put(vm.vm(), vm);
            }
            next.keySet().removeIf(vm -> {
                Instant seen = lastListed.get(vm);
                boolean forget = seen == null || Duration.between(seen, now).compareTo(FORGET_AFTER) > 0;
                if (forget) {
                    log.info("VM {} not listed by the inventory for {}: no longer measured", vm, FORGET_AFTER);
                }
                return forget;
            });
            measured = Map.copyOf(next);
            listed = true;
        }
    }

    /**
     * Measures {@code vms} as if the inventory had listed them now: the VMs the engine's previous life
     * measured, so that a restart does not forget a VM that is unreachable at that moment (its QMP
     * socket gone, its host down). They are forgotten like any VM the inventory stops listing, after
     * {@link #FORGET_AFTER}. Their labels are not known until listed again, so only policies that
     * select them by name or glob measure them meanwhile.
     */
    public synchronized void measureRemembered(java.util.Collection<String> vms) {
        Instant now = clock.instant();
        Map<String, VmPlacement> next = new java.util.TreeMap<>(measured);
        for (String vm : vms) {
            if (next.putIfAbsent(vm, new VmPlacement(vm, new Placement("-", Map.of()))) == null) {
                lastListed.putIfAbsent(vm, now);
                firstSeen.putIfAbsent(vm, now);
            }
        }
        measured = Map.copyOf(next);
    }

    /**
     * Every VM the policies select, at every location they require, measured now, from memory (the
     * inventory is read here only if {@link #refreshInventory()} never ran). A VM with no restore
     * point at a location is measured from when the tracker first saw it (it is not violated before
     * one RPO has passed).
     */
    public List<Status> status() {
        if (!listed) {
            refreshInventory();
        }
        Instant now = clock.instant();
        List<Status> out = new ArrayList<>();
        for (VmPlacement vm : measured.values()) {
            Map<String, Policy> strictest = new java.util.TreeMap<>();
            for (Policy p : policies.policies()) {
                if (!p.vms().matches(vm.vm(), vm.labels())) {
                    continue;
                }
                List<String> locations = new ArrayList<>();
                locations.add(LOCAL);
                locations.addAll(p.targets());
                for (String location : locations) {
                    strictest.merge(location, p, (a, b) -> a.rpoAt(location).compareTo(b.rpoAt(location)) <= 0 ? a : b);
                }
            }
            strictest.forEach((location, p) -> {
                Optional<Instant> at = Optional.ofNullable(newest.get(key(vm.vm(), location)));
                Duration age = Duration.between(at.orElse(firstSeen.getOrDefault(vm.vm(), startedAt)), now);
                Duration rpo = p.rpoAt(location);
                out.add(new Status(
                        vm.vm(), location, p.name(), rpo, at, at.map(a -> age), age.compareTo(rpo) > 0, age));
            });
        }
        out.sort(Comparator.comparing(Status::vm).thenComparing(Status::location));
        return out;
    }

    /**
     * Publishes {@link RpoViolated} for every violation that started since the last check.
     *
     * <p>Every process of a fleet that tracks RPO (each scheduler, each worker for its own VMs) may
     * raise the same violation. Its event is therefore named by the violation, not by the process: the
     * job id is {@code rpo/<vm>@<location>/<capture time of the newest point, or none>} and the event
     * id is derived from it ({@link #violationId}), so every process publishes the same ids and a
     * consumer that deduplicates by event id (as the job history does) sees each violation once. A
     * violation ends only when a newer point arrives, so the newest point names it.
     */
    public List<Status> check(EventBus bus) {
        List<Status> started = new ArrayList<>();
        for (Status s : status()) {
            String k = key(s.vm(), s.location());
            if (s.violated() && !violating.contains(k)) {
                Duration age = s.without();
                try {
                    String violation = violationId(s.vm(), s.location(), s.newestCapturedAt());
                    bus.publish(
                            Topics.JOB_STATUS,
                            s.vm(),
                            new Event(
                                    java.util
                                            .UUID
                                            .nameUUIDFromBytes(
                                                    violation.getBytes(java.nio.charset.StandardCharsets.UTF_8))
                                            .toString(),
                                    violation,
                                    clock.instant(),
                                    new RpoViolated(
                                            s.vm(), s.location(), s.policy(), s.rpo(), age, s.newestCapturedAt())));
                } catch (RuntimeException e) { // the bus is down: the next check publishes it
                    log.warn("RPO violation of {} at {} not published yet: {}", s.vm(), s.location(), e.getMessage());
                    continue;
                }
                log.warn(
                        "RPO violated: {} at {} has no restore point newer than {} (policy {} allows {})",
                        s.vm(),
                        s.location(),
                        age,
                        s.policy(),
                        s.rpo());
                // only once it is published: a bus that failed gets the event on the next check
                violating.add(k);
                started.add(s);
            } else if (!s.violated()) {
                violating.remove(k);
            }
        }
        return started;
    }

    /**
     * The name of one violation, the same in every process: the VM, the location and the newest
     * point it had there when the violation started.
     */
    static String violationId(String vm, String location, Optional<Instant> newestCapturedAt) {
        return "rpo/" + key(vm, location) + "/"
                + newestCapturedAt.map(Instant::toString).orElse("none");
    }

    private static String key(String vm, String location) {
        return vm + "@" + location;
    }
}
