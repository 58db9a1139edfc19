package io.tidemark.engine;

import com.sun.net.httpserver.HttpServer;
import io.tidemark.core.PermanentException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.scheduler.RpoTracker;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * Prometheus text exposition on {@code GET /metrics}: per VM and location, the RPO (age of the
 * newest restore point), the policy's limit, and whether it is violated; per target, whether its
 * last probe answered and how many restore points it lacks. With an {@link EngineHealth}, also
 * {@code GET /healthz} (liveness) and {@code GET /readyz} (readiness per role and target, 200 or
 * 503), as JSON. With {@link EngineMetrics}, also the job, byte, replication and JVM families
 * (docs/monitoring.md lists every one). Every answer is built from memory: nothing here calls a target or a VM, so a
 * scrape answers at once whatever a target does.
 */
public final class MetricsServer implements AutoCloseable {

    private static final String JSON = "application/json; charset=utf-8";

    private final HttpServer server;
    private final java.util.concurrent.ExecutorService executor;
    private volatile java.util.function.Supplier<String> mirrors = () -> "";
    private volatile java.util.function.Supplier<String> tiers = () -> "";
    private volatile java.util.function.Supplier<java.util.List<io.tidemark.replicator.Pruner.BudgetUse>> budgets =
            java.util.List::of;

    public MetricsServer(InetSocketAddress address, RpoTracker rpo) {
        this(address, rpo, java.util.List::of);
    }

    /** Also exposes the newest drill result per VM and location ({@code tidemark drill}). */
    public MetricsServer(
            InetSocketAddress address,
            RpoTracker rpo,
            java.util.function.Supplier<java.util.List<io.tidemark.repository.DrillRecord>> drills) {
        this(address, rpo, drills, null, java.util.Map::of, java.time.Clock.systemUTC());
    }

    /**
     * @param health answers {@code /healthz} and {@code /readyz}; null serves neither
     * @param targets each target's state as the reconciliation keeps it
     */
    public MetricsServer(
            InetSocketAddress address,
            RpoTracker rpo,
            java.util.function.Supplier<java.util.List<io.tidemark.repository.DrillRecord>> drills,
            EngineHealth health,
            java.util.function.Supplier<java.util.Map<String, io.tidemark.replicator.Reconciler.TargetState>> targets,
            java.time.Clock clock) {
        this(address, rpo, drills, health, targets, clock, null);
    }

    /**
     * @param engine the job, byte, replication and JVM families ({@link EngineMetrics}), appended
     *     after the RPO, drill and target gauges; null serves only those
     */
    public MetricsServer(
            InetSocketAddress address,
            RpoTracker rpo,
            java.util.function.Supplier<java.util.List<io.tidemark.repository.DrillRecord>> drills,
            EngineHealth health,
            java.util.function.Supplier<java.util.Map<String, io.tidemark.replicator.Reconciler.TargetState>> targets,
            java.time.Clock clock,
            EngineMetrics engine) {
        try {
            server = HttpServer.create(address, 0);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot serve metrics on " + address + ": " + e.getMessage()
                            + "; choose another address with metrics: in the engine config",
                    e);
        }
        server.createContext("/metrics", exchange -> {
            String text = render(rpo)
                    + renderDrills(drills.get())
                    + renderTargets(targets.get(), clock.instant())
                    + renderBudgets(budgets.get())
                    + mirrors.get()
                    + tiers.get()
                    + (engine == null ? "" : engine.scrape());
            send(exchange, 200, "text/plain; version=0.0.4; charset=utf-8", text);
        });
        if (health != null) {
            server.createContext("/healthz", exchange -> send(exchange, 200, JSON, health.liveness()));
            server.createContext("/readyz", exchange -> {
                EngineHealth.Readiness r = health.readiness();
                send(exchange, r.ready() ? 200 : 503, JSON, r.json());
            });
        }
        // a slow client holds one thread, not the endpoint
        executor = java.util.concurrent.Executors.newFixedThreadPool(2, DaemonThreads.named("metrics-http"));
        server.setExecutor(executor);
        server.start();
    }

    private static void send(com.sun.net.httpserver.HttpExchange exchange, int status, String type, String text)
            throws IOException {
        byte[] body = text.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    /** Also exposes the continuous-protection mirrors' gauges (ADR 19), rendered from memory. */
    void mirrors(java.util.function.Supplier<String> lines) {
        this.mirrors = lines;
    }

    /** Also exposes the tier sweeps' gauges and counters (ADR 20), rendered from memory. */
    void tiers(java.util.function.Supplier<String> lines) {
        this.tiers = lines;
    }

    /** Also exposes the use of the capacity budgets, as the budget watch last measured it. */
    void budgets(java.util.function.Supplier<java.util.List<io.tidemark.replicator.Pruner.BudgetUse>> uses) {
        this.budgets = uses;
    }

    /** {@code tidemark_budget_bytes} and {@code tidemark_budget_used_bytes} per VM and location; nothing without budgets. */
    static String renderBudgets(java.util.List<io.tidemark.replicator.Pruner.BudgetUse> uses) {
        if (uses.isEmpty()) {
            return "";
        }
        StringBuilder budget = new StringBuilder(
                "# HELP tidemark_budget_bytes The capacity budget of a VM at a location (its policy's budget:).\n"
                        + "# TYPE tidemark_budget_bytes gauge\n");
        StringBuilder used = new StringBuilder(
                "# HELP tidemark_budget_used_bytes What the VM's restore points at a location occupy once prune has"
                        + " run (distinct chunks, before compression).\n# TYPE tidemark_budget_used_bytes gauge\n");
        for (io.tidemark.replicator.Pruner.BudgetUse u : uses) {
            String labels = String.format(
                    Locale.ROOT, "{vm=\"%s\",location=\"%s\",policy=\"%s\"}", u.vm(), u.location(), u.policy());
            budget.append("tidemark_budget_bytes")
                    .append(labels)
                    .append(' ')
                    .append(u.budgetBytes())
                    .append('\n');
            used.append("tidemark_budget_used_bytes")
                    .append(labels)
                    .append(' ')
                    .append(u.usedBytes())
                    .append('\n');
        }
        return budget.append(used).toString();
    }

    /** Also serves the status page ({@link StatusPageHttp}) on this listener. */
    void serve(StatusPageHttp statusPage) {
        statusPage.register(server);
    }

    public int port() {
        return server.getAddress().getPort();
    }

    static String render(RpoTracker rpo) {
        StringBuilder age =
                new StringBuilder("# HELP tidemark_rpo_seconds Age of the newest restore point of a VM at a location.\n"
                        + "# TYPE tidemark_rpo_seconds gauge\n");
        StringBuilder limit =
                new StringBuilder("# HELP tidemark_rpo_limit_seconds The RPO the VM's policy allows at a location.\n"
                        + "# TYPE tidemark_rpo_limit_seconds gauge\n");
        StringBuilder violated = new StringBuilder(
                "# HELP tidemark_rpo_violated 1 when the RPO at a location exceeds the policy's limit.\n"
                        + "# TYPE tidemark_rpo_violated gauge\n");
        StringBuilder lag = new StringBuilder(
                "# HELP tidemark_replication_lag_seconds How far a target's newest restore point of a VM is behind"
                        + " the local one (snapshot moments).\n# TYPE tidemark_replication_lag_seconds gauge\n");
        java.util.List<RpoTracker.Status> all = rpo.status();
        java.util.Map<String, java.time.Instant> local = new java.util.HashMap<>();
        all.stream().filter(s -> s.location().equals(RpoTracker.LOCAL)).forEach(s -> s.newestCapturedAt()
                .ifPresent(t -> local.put(s.vm(), t)));
        for (RpoTracker.Status s : all) {
            java.time.Instant newestLocal = local.get(s.vm());
            if (!s.location().equals(RpoTracker.LOCAL)
                    && newestLocal != null
                    && s.newestCapturedAt().isPresent()) {
                java.time.Duration behind =
                        java.time.Duration.between(s.newestCapturedAt().get(), newestLocal);
                lag.append(String.format(
                        Locale.ROOT,
                        "tidemark_replication_lag_seconds{vm=\"%s\",target=\"%s\"} %s%n",
                        s.vm(),
                        s.location(),
                        Math.max(0, behind.toMillis()) / 1000.0));
            }
        }
        for (RpoTracker.Status s : all) {
            String labels = String.format(
                    Locale.ROOT, "{vm=\"%s\",location=\"%s\",policy=\"%s\"}", s.vm(), s.location(), s.policy());
            // with no point yet: the time since the engine first saw the VM, so an alert on it fires too
            age.append("tidemark_rpo_seconds")
                    .append(labels)
                    .append(' ')
                    .append(s.without().toMillis() / 1000.0)
                    .append('\n');
            limit.append("tidemark_rpo_limit_seconds")
                    .append(labels)
                    .append(' ')
                    .append(s.rpo().toSeconds())
                    .append('\n');
            violated.append("tidemark_rpo_violated")
                    .append(labels)
                    .append(' ')
                    .append(s.violated() ? 1 : 0)
                    .append('\n');
        }
        return age.append(limit).append(violated).append(lag).toString();
    }

    static String renderDrills(java.util.List<io.tidemark.repository.DrillRecord> drills) {
        StringBuilder rto = new StringBuilder(
                "# HELP tidemark_rto_seconds Recovery time measured by the newest drill of a VM at a location.\n"
                        + "# TYPE tidemark_rto_seconds gauge\n");
        StringBuilder limit = new StringBuilder("# HELP tidemark_rto_limit_seconds The RTO the VM's policy promises.\n"
                + "# TYPE tidemark_rto_limit_seconds gauge\n");
        StringBuilder passed = new StringBuilder(
                "# HELP tidemark_drill_passed 1 when the newest drill's check passed, 0 when it failed.\n"
                        + "# TYPE tidemark_drill_passed gauge\n");
        StringBuilder at = new StringBuilder(
                "# HELP tidemark_drill_timestamp_seconds When the newest drill finished (Unix time).\n"
                        + "# TYPE tidemark_drill_timestamp_seconds gauge\n");
        for (io.tidemark.repository.DrillRecord d : drills) {
            String labels = String.format(Locale.ROOT, "{vm=\"%s\",location=\"%s\"}", d.vm(), d.location());
            rto.append("tidemark_rto_seconds")
                    .append(labels)
                    .append(' ')
                    .append(d.rtoMillis() / 1000.0)
                    .append('\n');
            d.rtoLimit().ifPresent(l -> limit.append("tidemark_rto_limit_seconds")
                    .append(labels)
                    .append(' ')
                    .append(l.toSeconds())
                    .append('\n'));
            passed.append("tidemark_drill_passed")
                    .append(labels)
                    .append(' ')
                    .append(d.passed() ? 1 : 0)
                    .append('\n');
            at.append("tidemark_drill_timestamp_seconds")
                    .append(labels)
                    .append(' ')
                    .append(d.at().getEpochSecond())
                    .append('\n');
        }
        return rto.append(limit).append(passed).append(at).toString();
    }

    static String renderTargets(
            java.util.Map<String, io.tidemark.replicator.Reconciler.TargetState> targets, java.time.Instant now) {
        StringBuilder up = new StringBuilder(
                "# HELP tidemark_target_up 1 when the target's last probe answered in time, 0 when it did not.\n"
                        + "# TYPE tidemark_target_up gauge\n");
        StringBuilder probed = new StringBuilder(
                "# HELP tidemark_target_probe_timestamp_seconds When the target was last probed (Unix time).\n"
                        + "# TYPE tidemark_target_probe_timestamp_seconds gauge\n");
        StringBuilder missing = new StringBuilder(
                "# HELP tidemark_replication_missing_points Restore points a target should hold and lacks"
                        + " (the reconciliation ships them).\n# TYPE tidemark_replication_missing_points gauge\n");
        StringBuilder oldest = new StringBuilder(
                "# HELP tidemark_replication_oldest_missing_seconds Age of the oldest restore point a target"
                        + " lacks; 0 when it lacks none.\n# TYPE tidemark_replication_oldest_missing_seconds gauge\n");
        targets.forEach((name, s) -> {
            String labels = String.format(Locale.ROOT, "{target=\"%s\"}", name);
            // no sample before the first probe: "down" at start-up would be a claim nobody measured
            s.probedAt().ifPresent(t -> {
                up.append("tidemark_target_up")
                        .append(labels)
                        .append(' ')
                        .append(s.reachable() ? 1 : 0)
                        .append('\n');
                probed.append("tidemark_target_probe_timestamp_seconds")
                        .append(labels)
                        .append(' ')
                        .append(t.getEpochSecond())
                        .append('\n');
            });
            missing.append("tidemark_replication_missing_points")
                    .append(labels)
                    .append(' ')
                    .append(s.missing())
                    .append('\n');
            oldest.append("tidemark_replication_oldest_missing_seconds")
                    .append(labels)
                    .append(' ')
                    .append(s.oldestMissingCapturedAt()
                            .map(t -> Math.max(
                                            0,
                                            java.time.Duration.between(t, now).toMillis())
                                    / 1000.0)
                            .orElse(0.0))
                    .append('\n');
        });
        return up.append(probed).append(missing).append(oldest).toString();
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
