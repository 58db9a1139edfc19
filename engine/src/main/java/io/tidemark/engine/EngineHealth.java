package io.tidemark.engine;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.bus.EventBus;
import io.tidemark.format.Json;
import io.tidemark.replicator.Reconciler;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Liveness and readiness of the engine's roles, answered from memory: the bus's subscription states
 * ({@link EventBus#subscriptions()}, kept current by the bus), which roles have started, when the RPO
 * watchdog last completed a check, and each target's last probe ({@link Reconciler#states()}).
 * Nothing here calls a target, a VM or the broker.
 *
 * <p>Readiness is per component: {@code bus} (every subscription delivering), {@code scheduler},
 * {@code worker} and {@code replicator} (started, and their subscriptions delivering), {@code rpo}
 * (the watchdog checked within {@link #RPO_CHECK_STALE}), and {@code target:NAME} (its last probe
 * answered). The engine is ready when every component is.
 */
final class EngineHealth {

    /** A watchdog whose last completed check is older than this is reported not ready. */
    static final Duration RPO_CHECK_STALE = Duration.ofMinutes(1);

    /** One component's readiness. */
    record Component(String name, boolean ready, String detail) {}

    private final Supplier<List<EventBus.SubscriptionState>> subscriptions;
    private final Supplier<Map<String, Reconciler.TargetState>> targets;
    private final String host;
    private final Clock clock;
    private final Instant startedAt;
    private final Map<String, Instant> started = new ConcurrentHashMap<>();
    private volatile Instant rpoCheckedAt;

    EngineHealth(
            Supplier<List<EventBus.SubscriptionState>> subscriptions,
            Supplier<Map<String, Reconciler.TargetState>> targets,
            String host,
            Clock clock) {
        this.subscriptions = subscriptions;
        this.targets = targets;
        this.host = host;
        this.clock = clock;
        this.startedAt = clock.instant();
    }

    /** Notes that {@code role} (scheduler, worker, replicator) has started. */
    void started(String role) {
        started.put(role, clock.instant());
    }

    /** Notes that the RPO watchdog completed a check. */
    void rpoChecked() {
        rpoCheckedAt = clock.instant();
    }

    /** Every component, in a fixed order. */
    List<Component> components() {
        List<EventBus.SubscriptionState> subs = subscriptions.get();
        List<Component> out = new java.util.ArrayList<>();
        out.add(subscribers("bus", subs, ""));
        out.add(role("scheduler", subs, null));
        out.add(role("worker", subs, "tidemark-worker-" + host));
        out.add(role("replicator", subs, "tidemark-replicator-"));
        Instant checked = rpoCheckedAt;
        Instant now = clock.instant();
        out.add(
                checked == null
                        ? new Component("rpo", false, "the RPO watchdog has not completed a check yet")
                        : Duration.between(checked, now).compareTo(RPO_CHECK_STALE) > 0
                                ? new Component(
                                        "rpo",
                                        false,
                                        "the RPO watchdog's last check was at " + checked
                                                + "; see the engine log for 'RPO check failed'")
                                : new Component("rpo", true, "last check at " + checked));
        targets.get()
                .forEach((name, s) -> out.add(new Component(
                        "target:" + name,
                        s.reachable(),
                        s.reachable()
                                ? "answered at "
                                        + s.probedAt().map(Instant::toString).orElse("-")
                                : s.probeError().orElse("not reachable"))));
        return out;
    }

    private Component role(String role, List<EventBus.SubscriptionState> subs, String groupPrefix) {
        if (!started.containsKey(role)) {
            return new Component(role, false, "not started yet");
        }
        if (groupPrefix == null) {
            return new Component(role, true, "started at " + started.get(role));
        }
        return subscribers(role, subs, groupPrefix);
    }

    private static Component subscribers(String name, List<EventBus.SubscriptionState> subs, String groupPrefix) {
        List<EventBus.SubscriptionState> mine =
                subs.stream().filter(s -> s.group().startsWith(groupPrefix)).toList();
        if (mine.isEmpty()) {
            return new Component(name, true, "no subscription state reported");
        }
        List<String> down = mine.stream()
                .filter(s -> !s.running())
                .map(s -> s.group() + " " + s.topics() + " not delivering"
                        + s.lastError().map(e -> ": " + e).orElse("") + " (" + s.restarts() + " restarts)")
                .toList();
        return down.isEmpty()
                ? new Component(name, true, mine.size() + " subscriptions delivering")
                : new Component(name, false, String.join("; ", down));
    }

    /** {@code /healthz}: the process answers; always 200 while it does. */
    String liveness() {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("status", "live");
        o.put("since", startedAt.toString());
        o.put("uptimeSeconds", Duration.between(startedAt, clock.instant()).toSeconds());
        return o.toString();
    }

    /** {@code /readyz}: whether every component is ready, and each one's state. */
    Readiness readiness() {
        List<Component> all = components();
        ObjectNode o = Json.mapper().createObjectNode();
        boolean ready = all.stream().allMatch(Component::ready);
        o.put("ready", ready);
        ObjectNode components = o.putObject("components");
        Map<String, Reconciler.TargetState> states = targets.get();
        for (Component c : all) {
            ObjectNode n = components.putObject(c.name());
            n.put("ready", c.ready());
            n.put("detail", c.detail());
            if (c.name().startsWith("target:")) {
                Optional.ofNullable(states.get(c.name().substring("target:".length())))
                        .ifPresent(s -> {
                            s.probedAt().ifPresent(t -> n.put("probedAt", t.toString()));
                            n.put("missingPoints", s.missing());
                            s.reconciledAt().ifPresent(t -> n.put("reconciledAt", t.toString()));
                        });
            }
        }
        return new Readiness(ready, o.toString());
    }

    /** A readiness answer: {@code ready} decides 200 or 503; {@code json} is the body. */
    record Readiness(boolean ready, String json) {}
}
