package io.tidemark.workers.mirror;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.RpoViolated;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Measures every continuously protected disk against its policy's RPO: keeps the newest {@link
 * MirrorState} of each in memory (for {@code status} and the metric {@code
 * tidemark_mirror_lag_seconds}) and publishes {@link RpoViolated} (location {@value #LOCATION})
 * once when a disk's lag first exceeds the RPO; the violation ends when the mirror is in sync
 * again. A bus that is down gets the event on the next state.
 */
public final class MirrorLagWatch {

    /** The {@link RpoViolated#location()} of a mirror's violation. */
    public static final String LOCATION = "dr-mirror";

    private static final Logger log = LoggerFactory.getLogger(MirrorLagWatch.class);

    private final EventBus bus;
    private final Clock clock;
    private final Map<String, MirrorState> states = new ConcurrentHashMap<>();
    private final Map<String, String> violating = new ConcurrentHashMap<>(); // key -> violation job id

    public MirrorLagWatch(EventBus bus, Clock clock) {
        this.bus = bus;
        this.clock = clock;
    }

    /** The listener to give a {@link ContinuousMirror} protecting a VM under {@code policy}. */
    public Consumer<MirrorState> listener(String policy, Duration rpo) {
        return s -> observe(policy, rpo, s);
    }

    private void observe(String policy, Duration rpo, MirrorState s) {
        String key = s.vm() + "/" + s.disk();
        states.put(key, s);
        if (s.lag().compareTo(rpo) <= 0) {
            if (s.inSync()) {
                violating.remove(key);
            }
            return;
        }
        if (violating.containsKey(key)) {
            return;
        }
        String violation = "rpo/" + s.vm() + "@" + LOCATION + "/" + s.disk() + "/"
                + s.lastInSync().map(Object::toString).orElse("never");
        try {
            bus.publish(
                    Topics.JOB_STATUS,
                    s.vm(),
                    new Event(
                            UUID.nameUUIDFromBytes(violation.getBytes(StandardCharsets.UTF_8))
                                    .toString(),
                            violation,
                            clock.instant(),
                            new RpoViolated(s.vm(), LOCATION, policy, rpo, s.lag(), s.lastInSync())));
        } catch (RuntimeException e) { // the bus is down: the next state publishes it
            log.warn("mirror RPO violation of {} not published yet: {}", key, e.getMessage());
            return;
        }
        violating.put(key, violation);
        log.warn(
                "RPO violated: the DR mirror of {} lags {} (policy {} allows {}){}",
                key,
                s.lag(),
                policy,
                rpo,
                s.problem().map(p -> ": " + p).orElse(""));
    }

    /** Forgets the disks of {@code vm}, no longer protected: its states and open violations. */
    public void forget(String vm) {
        String prefix = vm + "/";
        states.keySet().removeIf(k -> k.startsWith(prefix));
        violating.keySet().removeIf(k -> k.startsWith(prefix));
    }

    /** The newest state of every protected disk, by VM and disk. */
    public List<MirrorState> states() {
        List<MirrorState> out = new ArrayList<>(states.values());
        out.sort(Comparator.comparing(MirrorState::vm).thenComparing(MirrorState::disk));
        return out;
    }

    /** The newest state of one disk. */
    public Optional<MirrorState> state(String vm, String disk) {
        return Optional.ofNullable(states.get(vm + "/" + disk));
    }

    /** Prometheus text lines for the engine's metrics page, read from memory. */
    public String metrics() {
        StringBuilder b = new StringBuilder();
        b.append(
                "# HELP tidemark_mirror_lag_seconds Age of the oldest guest write the DR mirror may lack (0 in sync)\n");
        b.append("# TYPE tidemark_mirror_lag_seconds gauge\n");
        for (MirrorState s : states()) {
            b.append("tidemark_mirror_lag_seconds{vm=\"")
                    .append(s.vm())
                    .append("\",disk=\"")
                    .append(s.disk())
                    .append("\"} ")
                    .append(s.lag().toMillis() / 1000.0)
                    .append('\n');
        }
        b.append("# HELP tidemark_mirror_in_sync 1 while every completed guest write is at the DR site\n");
        b.append("# TYPE tidemark_mirror_in_sync gauge\n");
        for (MirrorState s : states()) {
            b.append("tidemark_mirror_in_sync{vm=\"")
                    .append(s.vm())
                    .append("\",disk=\"")
                    .append(s.disk())
                    .append("\"} ")
                    .append(s.inSync() ? 1 : 0)
                    .append('\n');
        }
        return b.toString();
    }
}
