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
 */
public final class RpoTracker {

    /** The location name of the primary repository. */
    public static final String LOCAL = "local";

    private static final Logger log = LoggerFactory.getLogger(RpoTracker.class);

    /** One VM at one location, measured at {@code now}. */
    public record Status(
            String vm,
            String location,
            String policy,
            Duration rpo,
            Optional<Instant> newestCapturedAt,
            Optional<Duration> age,
            boolean violated) {}

    private final Inventory inventory;
    private final Clock clock;
    private final Instant startedAt;
    private volatile PolicySet policies;
    private final Map<String, Instant> newest = new ConcurrentHashMap<>();
    private final Set<String> violating = ConcurrentHashMap.newKeySet();

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
     * Every VM the policies select, at every location they require, measured now. A VM with no
     * restore point at a location is measured from when the tracker started (it is not violated
     * before one RPO has passed).
     */
    public List<Status> status() {
        Instant now = clock.instant();
        List<Status> out = new ArrayList<>();
        for (VmPlacement vm : inventory.all()) {
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
                Duration age = Duration.between(at.orElse(startedAt), now);
                Duration rpo = p.rpoAt(location);
                out.add(new Status(vm.vm(), location, p.name(), rpo, at, at.map(a -> age), age.compareTo(rpo) > 0));
            });
        }
        out.sort(Comparator.comparing(Status::vm).thenComparing(Status::location));
        return out;
    }

    /** Publishes {@link RpoViolated} for every violation that started since the last check. */
    public List<Status> check(EventBus bus) {
        List<Status> started = new ArrayList<>();
        for (Status s : status()) {
            String k = key(s.vm(), s.location());
            if (s.violated() && violating.add(k)) {
                started.add(s);
                Duration age = s.age().orElse(Duration.between(startedAt, clock.instant()));
                log.warn(
                        "RPO violated: {} at {} has no restore point newer than {} (policy {} allows {})",
                        s.vm(),
                        s.location(),
                        age,
                        s.policy(),
                        s.rpo());
                bus.publish(
                        Topics.JOB_STATUS,
                        s.vm(),
                        Event.of(
                                "rpo/" + k,
                                clock.instant(),
                                new RpoViolated(s.vm(), s.location(), s.policy(), s.rpo(), age, s.newestCapturedAt())));
            } else if (!s.violated()) {
                violating.remove(k);
            }
        }
        return started;
    }

    private static String key(String vm, String location) {
        return vm + "@" + location;
    }
}
