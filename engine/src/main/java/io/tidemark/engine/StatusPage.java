package io.tidemark.engine;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.format.Json;
import io.tidemark.replicator.Reconciler;
import io.tidemark.replicator.TierSweeps;
import io.tidemark.repository.DrillRecord;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.workers.JobProgress;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * The engine's status page: per VM and location the RPO state and newest point, the VM's running
 * jobs and how far they got, its newest restore points, its recent failures with their reasons, the
 * newest drill per location, per target its health and what its tier sweep last did — as one {@link View}, rendered as HTML
 * ({@link #html}) and JSON ({@link #json}).
 *
 * <p>Every source is memory the engine keeps current in the background (the RPO tracker, the
 * reconciliation's target states, the drill results refreshed on a thread of their own, the
 * worker's running jobs, {@link RecentJobs}, the health components): building a view never calls a
 * target, a VM or the broker, so the page answers at once whatever they do.
 */
final class StatusPage {

    /** Newest restore points shown per VM. */
    static final int POINTS_PER_VM = 3;

    /** Recent failures shown per VM. */
    static final int FAILURES_PER_VM = 5;

    /** How often the HTML page reloads itself. */
    static final Duration REFRESH = Duration.ofSeconds(15);

    /**
     * Where the page reads from; each supplier answers from memory.
     *
     * @param host this engine's host name
     * @param rpo each VM at each location ({@link RpoTracker#status()})
     * @param targets each target's state ({@link Reconciler#states()})
     * @param drills the newest drill per VM and location
     * @param components the engine's components and their readiness
     * @param running the jobs this host's worker runs now (empty where no worker runs)
     * @param recent the newest job events per VM
     * @param clock the time the view is taken at
     * @param states each continuous VM's location state ({@link #stateKey})
     * @param tierSweeps what the tier sweeps last did per target ({@link TierSweeps#statuses()})
     */
    record Sources(
            String host,
            Supplier<List<RpoTracker.Status>> rpo,
            Supplier<Map<String, Reconciler.TargetState>> targets,
            Supplier<List<DrillRecord>> drills,
            Supplier<List<EngineHealth.Component>> components,
            Supplier<List<JobProgress>> running,
            RecentJobs recent,
            Clock clock,
            Supplier<Map<String, String>> states,
            Supplier<List<TierSweeps.Status>> tierSweeps) {
        /** Without continuous VMs' location states and tier sweeps (a page that has neither). */
        Sources(
                String host,
                Supplier<List<RpoTracker.Status>> rpo,
                Supplier<Map<String, Reconciler.TargetState>> targets,
                Supplier<List<DrillRecord>> drills,
                Supplier<List<EngineHealth.Component>> components,
                Supplier<List<JobProgress>> running,
                RecentJobs recent,
                Clock clock) {
            this(host, rpo, targets, drills, components, running, recent, clock, Map::of, List::of);
        }

        /** The key of a location's state in {@link #states}: {@code vm@location}. */
        static String stateKey(String vm, String location) {
            return vm + "@" + location;
        }

        Sources {
            Objects.requireNonNull(states, "states");
            Objects.requireNonNull(tierSweeps, "tierSweeps");
            Objects.requireNonNull(host, "host");
            Objects.requireNonNull(rpo, "rpo");
            Objects.requireNonNull(targets, "targets");
            Objects.requireNonNull(drills, "drills");
            Objects.requireNonNull(components, "components");
            Objects.requireNonNull(running, "running");
            Objects.requireNonNull(recent, "recent");
            Objects.requireNonNull(clock, "clock");
        }
    }

    /** One VM at one location. */
    record Location(
            String location,
            Optional<Instant> newest,
            Optional<String> pointId,
            Optional<Duration> age,
            Duration rpo,
            boolean violated,
            boolean reachable,
            Optional<DrillRecord> drill,
            Optional<String> state) {}

    /** A committed restore point, as the job history saw it. */
    record Point(String id, Instant capturedAt, long bytesRead, long bytesNew, List<String> replicatedTo) {}

    /**
     * A failure of the VM's jobs: the newest of {@code count} recent ones with the same reason, stage
     * and message (a VM failing every firing shows one row, not one per firing).
     *
     * @param at when the newest of them failed
     * @param firstAt when the oldest of them (among the recent jobs kept) failed
     */
    record Failure(
            Instant at,
            String jobId,
            String reason,
            String stage,
            String error,
            boolean retriable,
            int count,
            Instant firstAt) {}

    /** Everything the page shows of one VM. */
    record Vm(
            String name,
            Optional<String> policy,
            List<Location> locations,
            List<JobProgress> running,
            List<Point> points,
            List<Failure> failures,
            boolean failing) {

        /** True when the RPO is violated at any location. */
        boolean violated() {
            return locations.stream().anyMatch(Location::violated);
        }
    }

    /** The whole page. */
    record View(
            String host,
            Instant at,
            boolean historyLoaded,
            List<Vm> vms,
            List<Reconciler.TargetState> targets,
            List<EngineHealth.Component> components,
            List<TierSweeps.Status> tierSweeps) {}

    private final Sources sources;

    StatusPage(Sources sources) {
        this.sources = Objects.requireNonNull(sources, "sources");
    }

    /** The page's content now, from memory. */
    View view() {
        Instant now = sources.clock().instant();
        List<RpoTracker.Status> rpo = sources.rpo().get();
        Map<String, Reconciler.TargetState> targets =
                new TreeMap<>(sources.targets().get());
        List<DrillRecord> drills = sources.drills().get();
        Map<String, String> states = sources.states().get();
        List<JobProgress> running = sources.running().get();
        Map<String, List<JobRuns.Run>> runs = sources.recent().runs();
        TreeSet<String> names = new TreeSet<>();
        rpo.forEach(s -> names.add(s.vm()));
        names.addAll(runs.keySet());
        running.forEach(j -> names.add(j.vm()));
        drills.forEach(d -> names.add(d.vm()));
        List<Vm> vms = new ArrayList<>();
        for (String vm : names) {
            List<JobRuns.Run> mine = runs.getOrDefault(vm, List.of());
            List<JobRuns.Run> committed = mine.stream()
                    .filter(r ->
                            r.restorePointId().isPresent() && r.capturedAt().isPresent())
                    .sorted(Comparator.comparing(
                            (JobRuns.Run r) -> r.capturedAt().get()))
                    .toList();
            List<Location> locations = new ArrayList<>();
            Optional<String> policy = Optional.empty();
            for (RpoTracker.Status s : rpo) {
                if (!s.vm().equals(vm)) {
                    continue;
                }
                policy = policy.or(() -> Optional.of(s.policy()));
                boolean local = s.location().equals(RpoTracker.LOCAL);
                Reconciler.TargetState t = targets.get(s.location());
                locations.add(new Location(
                        s.location(),
                        s.newestCapturedAt(),
                        s.newestCapturedAt().flatMap(at -> pointAt(committed, at)),
                        s.age(),
                        s.rpo(),
                        s.violated(),
                        local || t == null || t.reachable(),
                        drills.stream()
                                .filter(d -> d.vm().equals(vm) && d.location().equals(s.location()))
                                .max(Comparator.comparing(DrillRecord::at)),
                        Optional.ofNullable(states.get(Sources.stateKey(vm, s.location())))));
            }
            // drills at locations the RPO does not measure (a target no policy names any more)
            for (DrillRecord d : drills) {
                if (d.vm().equals(vm)
                        && locations.stream().noneMatch(l -> l.location().equals(d.location()))) {
                    locations.add(new Location(
                            d.location(),
                            Optional.empty(),
                            Optional.empty(),
                            Optional.empty(),
                            Duration.ZERO,
                            false,
                            true,
                            Optional.of(d),
                            Optional.empty()));
                }
            }
            List<Point> points = new ArrayList<>();
            for (int i = committed.size() - 1; i >= 0 && points.size() < POINTS_PER_VM; i--) {
                JobRuns.Run r = committed.get(i);
                points.add(new Point(
                        r.restorePointId().get(),
                        r.capturedAt().get(),
                        r.bytesRead(),
                        r.bytesNew(),
                        r.replicas().stream().map(JobRuns.Replica::target).toList()));
            }
            List<Failure> failures = failures(mine);
            // the newest job that ended: failed, or committed
            boolean failing = mine.stream()
                    .filter(r -> r.state() == JobRuns.State.FAILED || r.state() == JobRuns.State.COMMITTED)
                    .max(Comparator.comparing(JobRuns.Run::lastAt))
                    .map(r -> r.state() == JobRuns.State.FAILED)
                    .orElse(false);
            vms.add(new Vm(
                    vm,
                    policy.or(() -> mine.stream()
                            .map(JobRuns.Run::policy)
                            .flatMap(Optional::stream)
                            .reduce((a, b) -> b)),
                    locations,
                    running.stream().filter(j -> j.vm().equals(vm)).toList(),
                    points,
                    failures,
                    failing));
        }
        // the VMs that need a look first: RPO violated, then failing, then by name
        vms.sort(Comparator.comparing((Vm v) -> !v.violated())
                .thenComparing(v -> !v.failing())
                .thenComparing(Vm::name));
        return new View(
                sources.host(),
                now,
                sources.recent().seeded(),
                vms,
                List.copyOf(targets.values()),
                sources.components().get(),
                List.copyOf(sources.tierSweeps().get()));
    }

    /** The VM's failed jobs, newest first, alike ones (reason, stage, message) as one row with a count. */
    private static List<Failure> failures(List<JobRuns.Run> runs) {
        Map<List<String>, Failure> alike = new java.util.LinkedHashMap<>();
        runs.stream()
                .filter(r -> r.failure().isPresent())
                .sorted(Comparator.comparing(
                                (JobRuns.Run r) -> r.failure().get().at())
                        .reversed())
                .forEach(r -> {
                    JobRuns.Failure f = r.failure().get();
                    String reason = f.reason()
                            .map(x -> x.name().toLowerCase(Locale.ROOT))
                            .orElse("unknown");
                    alike.merge(
                            List.of(reason, f.stage(), f.error()),
                            new Failure(f.at(), r.jobId(), reason, f.stage(), f.error(), f.retriable(), 1, f.at()),
                            (newer, older) -> new Failure(
                                    newer.at(),
                                    newer.jobId(),
                                    reason,
                                    newer.stage(),
                                    newer.error(),
                                    newer.retriable(),
                                    newer.count() + 1,
                                    older.firstAt()));
                });
        return alike.values().stream().limit(FAILURES_PER_VM).toList();
    }

    /** The id of the committed point captured at {@code at}, if the history holds it. */
    private static Optional<String> pointAt(List<JobRuns.Run> committed, Instant at) {
        return committed.stream()
                .filter(r -> r.capturedAt().get().equals(at))
                .map(r -> r.restorePointId().get())
                .reduce((a, b) -> b);
    }

    // ---------------------------------------------------------------- JSON

    /** {@code view} as JSON: the same content as the HTML page. */
    static String json(View view) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("host", view.host());
        o.put("at", view.at().toString());
        o.put("historyLoaded", view.historyLoaded());
        ArrayNode vms = o.putArray("vms");
        for (Vm vm : view.vms()) {
            ObjectNode v = vms.addObject();
            v.put("name", vm.name());
            vm.policy().ifPresent(p -> v.put("policy", p));
            v.put("rpoViolated", vm.violated());
            v.put("failing", vm.failing());
            ArrayNode locations = v.putArray("locations");
            for (Location l : vm.locations()) {
                ObjectNode n = locations.addObject();
                n.put("location", l.location());
                n.put("reachable", l.reachable());
                l.newest().ifPresent(t -> n.put("newestCapturedAt", t.toString()));
                l.pointId().ifPresent(id -> n.put("restorePoint", id));
                l.age().ifPresent(a -> n.put("ageSeconds", a.toSeconds()));
                n.put("rpoSeconds", l.rpo().toSeconds());
                n.put("violated", l.violated());
                l.state().ifPresent(st -> n.put("state", st));
                l.drill().ifPresent(d -> {
                    ObjectNode dn = n.putObject("lastDrill");
                    dn.put("restorePoint", d.restorePoint());
                    dn.put("at", d.at().toString());
                    dn.put("check", d.check());
                    dn.put("passed", d.passed());
                    dn.put("rtoSeconds", d.rtoMillis() / 1000.0);
                    d.rtoLimit().ifPresent(r -> dn.put("rtoLimitSeconds", r.toSeconds()));
                    dn.put("rtoViolated", d.rtoViolated());
                });
            }
            ArrayNode running = v.putArray("running");
            for (JobProgress j : vm.running()) {
                ObjectNode n = running.addObject();
                n.put("jobId", j.jobId());
                n.put("startedAt", j.startedAt().toString());
                n.put("stage", j.stage());
                n.put("stageNumber", j.stageNumber());
                n.put("stages", j.stages());
                n.put("stageSince", j.stageSince().toString());
                if (j.disks() > 0) {
                    n.put("disk", j.disk());
                    n.put("disks", j.disks());
                    n.put("bytesRead", j.bytesRead());
                    n.put("bytesToRead", j.bytesToRead());
                }
            }
            ArrayNode points = v.putArray("points");
            for (Point p : vm.points()) {
                ObjectNode n = points.addObject();
                n.put("id", p.id());
                n.put("capturedAt", p.capturedAt().toString());
                n.put("bytesRead", p.bytesRead());
                n.put("bytesNew", p.bytesNew());
                ArrayNode to = n.putArray("replicatedTo");
                p.replicatedTo().forEach(to::add);
            }
            ArrayNode failures = v.putArray("failures");
            for (Failure f : vm.failures()) {
                ObjectNode n = failures.addObject();
                n.put("at", f.at().toString());
                n.put("jobId", f.jobId());
                n.put("reason", f.reason());
                n.put("stage", f.stage());
                n.put("error", f.error());
                n.put("retriable", f.retriable());
                n.put("count", f.count());
                n.put("firstAt", f.firstAt().toString());
            }
        }
        ArrayNode targets = o.putArray("targets");
        for (Reconciler.TargetState t : view.targets()) {
            ObjectNode n = targets.addObject();
            n.put("name", t.target());
            n.put("reachable", t.reachable());
            t.probedAt().ifPresent(p -> n.put("probedAt", p.toString()));
            t.probeError().filter(e -> !t.reachable()).ifPresent(e -> n.put("probeError", e));
            n.put("missingPoints", t.missing());
            t.oldestMissingCapturedAt().ifPresent(p -> n.put("oldestMissingCapturedAt", p.toString()));
            t.reconciledAt().ifPresent(p -> n.put("reconciledAt", p.toString()));
            t.lastError().ifPresent(e -> n.put("lastError", e));
        }
        ArrayNode tiers = o.putArray("tierSweeps");
        for (TierSweeps.Status t : view.tierSweeps()) {
            ObjectNode n = tiers.addObject();
            n.put("target", t.target());
            n.put("state", t.state());
            t.lastAttempt().ifPresent(p -> n.put("lastAttempt", p.toString()));
            t.lastSuccess().ifPresent(p -> n.put("lastSuccess", p.toString()));
            t.lastError().ifPresent(e -> n.put("error", e));
            t.heldBy().ifPresent(e -> n.put("heldBy", e));
            t.last().ifPresent(r -> {
                n.put("chunks", r.chunks());
                n.put(
                        "taggedLast",
                        r.tagged().values().stream().mapToInt(Integer::intValue).sum());
                n.put("untaggedLast", r.untagged());
                n.put("tagReads", r.tagReads());
                n.put("restoresRequested", r.restoresRequested());
            });
            n.put("rewarmPending", t.rewarmPending());
            n.put("taggedTotal", t.taggedTotal());
            n.put("untaggedTotal", t.untaggedTotal());
            n.put("rewarmedTotal", t.rewarmedTotal());
            n.put("failures", t.failures());
        }
        ArrayNode components = o.putArray("components");
        for (EngineHealth.Component c : view.components()) {
            ObjectNode n = components.addObject();
            n.put("name", c.name());
            n.put("ready", c.ready());
            n.put("detail", c.detail());
        }
        return o.toString();
    }

    // ---------------------------------------------------------------- HTML

    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'", Locale.ROOT).withZone(ZoneOffset.UTC);

    private static final String STYLE =
            """
            body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f6f8;color:#1c2430}
            header{background:#123047;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
            header h1{font-size:20px;margin:0}
            header .sum span{margin-right:16px}
            main{padding:16px 24px;display:grid;gap:16px}
            section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:12px 16px}
            section h2{font-size:16px;margin:0 0 8px 0;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
            h3{font-size:13px;margin:10px 0 4px 0;color:#4a5868;text-transform:uppercase;letter-spacing:.04em}
            table{border-collapse:collapse;width:100%}
            th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef1f4;vertical-align:top;white-space:nowrap}
            td.err{white-space:normal}
            th{font-weight:600;color:#4a5868;font-size:12px}
            code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
            .badge{font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;color:#fff}
            .ok{background:#2e7d32}.bad{background:#c62828}.warn{background:#ef6c00}.idle{background:#78909c}
            .muted{color:#6b7785}.err{color:#b71c1c}
            progress{width:120px;vertical-align:middle}
            footer{padding:0 24px 16px;color:#6b7785;font-size:12px}
            """;

    /** {@code view} as a self-contained HTML page (inline style, no script, no external resource). */
    static String html(View view) {
        Instant now = view.at();
        StringBuilder h = new StringBuilder(16 * 1024);
        long violated = view.vms().stream().filter(Vm::violated).count();
        long failing = view.vms().stream().filter(Vm::failing).count();
        long running = view.vms().stream().mapToLong(v -> v.running().size()).sum();
        long down = view.targets().stream().filter(t -> !t.reachable()).count();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<meta http-equiv=\"refresh\" content=\"")
                .append(REFRESH.toSeconds())
                .append("\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")
                .append("<title>Tidemark status – ")
                .append(esc(view.host()))
                .append("</title><style>")
                .append(STYLE)
                .append("</style></head><body>");
        h.append("<header><h1>Tidemark status</h1><div>host <b>")
                .append(esc(view.host()))
                .append("</b> · ")
                .append(esc(TIME.format(now)))
                .append("</div><div class=\"sum\">")
                .append("<span>")
                .append(view.vms().size())
                .append(" VMs</span>")
                .append("<span id=\"sum-violated\">")
                .append(violated)
                .append(" RPO violated</span>")
                .append("<span id=\"sum-failing\">")
                .append(failing)
                .append(" failing</span>")
                .append("<span>")
                .append(running)
                .append(" jobs running</span>")
                .append("<span>")
                .append(down)
                .append(" of ")
                .append(view.targets().size())
                .append(" targets down</span></div></header><main>");
        if (view.vms().isEmpty()) {
            h.append("<section><p class=\"muted\">No VM is measured yet: no policy matches a VM this engine"
                    + " knows, or the first listing has not run.</p></section>");
        }
        for (Vm vm : view.vms()) {
            vmSection(h, vm, now);
        }
        targetsSection(h, view, now);
        tierSection(h, view, now);
        componentsSection(h, view);
        h.append("</main><footer>Read-only. Built from the engine's memory (never asks a target or a VM);"
                        + " reloads every ")
                .append(REFRESH.toSeconds())
                .append(" s. Same content as JSON: <code>/status.json</code>.")
                .append(
                        view.historyLoaded()
                                ? ""
                                : " The job history on disk is still being read: older jobs appear shortly.")
                .append("</footer></body></html>\n");
        return h.toString();
    }

    private static void vmSection(StringBuilder h, Vm vm, Instant now) {
        h.append("<section class=\"vm\" data-vm=\"")
                .append(esc(vm.name()))
                .append("\"><h2><span class=\"vm-name\">")
                .append(esc(vm.name()))
                .append("</span>");
        vm.policy()
                .ifPresent(p ->
                        h.append("<span class=\"muted\">policy ").append(esc(p)).append("</span>"));
        if (vm.violated()) {
            h.append("<span class=\"badge bad\">RPO violated</span>");
        } else if (!vm.locations().isEmpty()) {
            h.append("<span class=\"badge ok\">RPO met</span>");
        }
        if (vm.failing()) {
            h.append("<span class=\"badge warn\">last job failed</span>");
        }
        if (!vm.running().isEmpty()) {
            h.append("<span class=\"badge idle\">running</span>");
        }
        h.append("</h2>");
        if (!vm.locations().isEmpty()) {
            h.append("<table class=\"locations\"><tr><th>Location</th><th>Newest point</th><th>Captured</th>"
                    + "<th>Age</th><th>RPO</th><th>State</th><th>Last drill</th></tr>");
            for (Location l : vm.locations()) {
                h.append("<tr><td>")
                        .append(esc(l.location()))
                        .append("</td><td><code>")
                        .append(esc(l.pointId().orElse(l.newest().isPresent() ? "(older than the history)" : "none")))
                        .append("</code></td><td>")
                        .append(l.newest().map(t -> esc(TIME.format(t))).orElse("–"))
                        .append("</td><td>")
                        .append(l.age().map(Human::duration).orElse("–"))
                        .append("</td><td>")
                        .append(l.rpo().isZero() ? "–" : Human.duration(l.rpo()))
                        .append("</td><td>");
                if (!l.reachable()) {
                    h.append("<span class=\"badge warn\">unreachable</span> ");
                }
                l.state().ifPresent(st -> h.append("<span class=\"muted\">")
                        .append(esc(st))
                        .append("</span> "));
                if (l.rpo().isZero()) {
                    h.append("<span class=\"muted\">not measured</span>");
                } else {
                    h.append(
                            l.violated()
                                    ? "<span class=\"badge bad\">violated</span>"
                                    : "<span class=\"badge ok\">met</span>");
                }
                h.append("</td><td>");
                l.drill()
                        .ifPresentOrElse(
                                d -> h.append(
                                                d.passed()
                                                        ? "<span class=\"badge ok\">passed</span> "
                                                        : "<span" + " class=\"badge bad\">failed</span> ")
                                        .append(esc(d.check()))
                                        .append(", RTO ")
                                        .append(Human.duration(d.rto()))
                                        .append(d.rtoLimit()
                                                .map(r -> " of " + Human.duration(r)
                                                        + (d.rtoViolated()
                                                                ? " <span class=\"badge bad\">RTO violated</span>"
                                                                : ""))
                                                .orElse(""))
                                        .append(", ")
                                        .append(ago(d.at(), now)),
                                () -> h.append("<span class=\"muted\">none</span>"));
                h.append("</td></tr>");
            }
            h.append("</table>");
        }
        if (!vm.running().isEmpty()) {
            h.append("<h3>Running</h3><table class=\"running\"><tr><th>Job</th><th>Stage</th><th>Progress</th>"
                    + "<th>In stage</th><th>Running for</th></tr>");
            for (JobProgress j : vm.running()) {
                h.append("<tr><td><code>")
                        .append(esc(j.jobId()))
                        .append("</code></td><td>")
                        .append(esc(j.stage()))
                        .append(j.disks() > 0 ? " (disk " + j.disk() + " of " + j.disks() + ")" : "")
                        .append("</td><td>");
                if (j.disks() > 0 && j.bytesToRead() > 0) { // the export: bytes of the disks begun
                    h.append("<progress max=\"")
                            .append(j.bytesToRead())
                            .append("\" value=\"")
                            .append(Math.min(j.bytesRead(), j.bytesToRead()))
                            .append("\"></progress> ")
                            .append(Human.bytes(j.bytesRead()))
                            .append(" of ")
                            .append(Human.bytes(j.bytesToRead()))
                            .append(j.disk() < j.disks() ? " (disks begun so far)" : "");
                } else {
                    h.append("<progress max=\"")
                            .append(j.stages())
                            .append("\" value=\"")
                            .append(j.stageNumber() - 1)
                            .append("\"></progress> stage ")
                            .append(j.stageNumber())
                            .append(" of ")
                            .append(j.stages());
                }
                h.append("</td><td>")
                        .append(Human.duration(Duration.between(j.stageSince(), now)))
                        .append("</td><td>")
                        .append(Human.duration(Duration.between(j.startedAt(), now)))
                        .append("</td></tr>");
            }
            h.append("</table>");
        }
        if (!vm.points().isEmpty()) {
            h.append("<h3>Newest restore points</h3><table class=\"points\"><tr><th>Point</th><th>Captured</th>"
                    + "<th>Read</th><th>New</th><th>Replicated to</th></tr>");
            for (Point p : vm.points()) {
                h.append("<tr><td><code class=\"point\">")
                        .append(esc(p.id()))
                        .append("</code></td><td>")
                        .append(esc(TIME.format(p.capturedAt())))
                        .append(" (")
                        .append(ago(p.capturedAt(), now))
                        .append(")</td><td>")
                        .append(Human.bytes(p.bytesRead()))
                        .append("</td><td>")
                        .append(Human.bytes(p.bytesNew()))
                        .append("</td><td>")
                        .append(p.replicatedTo().isEmpty() ? "–" : esc(String.join(", ", p.replicatedTo())))
                        .append("</td></tr>");
            }
            h.append("</table>");
        }
        if (!vm.failures().isEmpty()) {
            h.append("<h3>Recent failures</h3><table class=\"failures\"><tr><th>When</th><th>Reason</th>"
                    + "<th>Stage</th><th>What happened</th></tr>");
            for (Failure f : vm.failures()) {
                h.append("<tr><td>")
                        .append(ago(f.at(), now))
                        .append(
                                f.count() > 1
                                        ? "<br><span class=\"muted\">" + f.count() + " times since "
                                                + ago(f.firstAt(), now) + "</span>"
                                        : "")
                        .append("</td><td><span class=\"badge bad reason\">")
                        .append(esc(f.reason()))
                        .append("</span>")
                        .append(f.retriable() ? "" : " <span class=\"muted\">(not retried)</span>")
                        .append("</td><td>")
                        .append(esc(f.stage()))
                        .append("</td><td class=\"err error\">")
                        .append(esc(f.error()))
                        .append("</td></tr>");
            }
            h.append("</table>");
        }
        h.append("</section>");
    }

    private static void targetsSection(StringBuilder h, View view, Instant now) {
        h.append("<section id=\"targets\"><h2>Targets</h2>");
        if (view.targets().isEmpty()) {
            h.append("<p class=\"muted\">No replication target is configured (or no replicator runs here).</p>");
        } else {
            h.append("<table><tr><th>Target</th><th>State</th><th>Last probe</th><th>Points missing</th>"
                    + "<th>Oldest missing</th><th>Last reconciled</th><th>Detail</th></tr>");
            for (Reconciler.TargetState t : view.targets()) {
                h.append("<tr><td>")
                        .append(esc(t.target()))
                        .append("</td><td>")
                        .append(
                                t.reachable()
                                        ? "<span class=\"badge ok\">up</span>"
                                        : "<span class=\"badge bad\">down</span>")
                        .append("</td><td>")
                        .append(t.probedAt().map(p -> ago(p, now)).orElse("never"))
                        .append("</td><td>")
                        .append(t.missing())
                        .append("</td><td>")
                        .append(t.oldestMissingCapturedAt()
                                .map(p -> ago(p, now))
                                .orElse("–"))
                        .append("</td><td>")
                        .append(t.reconciledAt().map(p -> ago(p, now)).orElse("never"))
                        .append("</td><td class=\"err\">")
                        .append(esc(
                                t.reachable()
                                        ? t.lastError().orElse("")
                                        : t.probeError().orElse("not reachable")))
                        .append("</td></tr>");
            }
            h.append("</table>");
        }
        h.append("</section>");
    }

    /** The tier sweeps (ADR 20), where they run: shown only when some policy's tiers name a storage class. */
    private static void tierSection(StringBuilder h, View view, Instant now) {
        if (view.tierSweeps().isEmpty()) {
            return;
        }
        h.append("<section id=\"tiers\"><h2>Tier sweeps</h2><table><tr><th>Target</th><th>State</th>"
                + "<th>Last sweep</th><th>Last success</th><th>Chunks tagged</th><th>Rewarm pending</th>"
                + "<th>Detail</th></tr>");
        for (TierSweeps.Status t : view.tierSweeps()) {
            String badge =
                    switch (t.state()) {
                        case "ok" -> "<span class=\"badge ok\">ok</span>";
                        case "held" -> "<span class=\"badge warn\">held</span>";
                        case "failing" -> "<span class=\"badge bad\">failing</span>";
                        default -> "<span class=\"muted\">not yet</span>";
                    };
            h.append("<tr class=\"tier\"><td>")
                    .append(esc(t.target()))
                    .append("</td><td>")
                    .append(badge)
                    .append("</td><td>")
                    .append(t.lastAttempt().map(p -> ago(p, now)).orElse("never"))
                    .append("</td><td>")
                    .append(t.lastSuccess().map(p -> ago(p, now)).orElse("never"))
                    .append("</td><td>")
                    .append(t.last()
                            .map(r -> r.tagged().values().stream()
                                            .mapToInt(Integer::intValue)
                                            .sum()
                                    + " last sweep, ")
                            .orElse(""))
                    .append(t.taggedTotal())
                    .append(" since start</td><td>")
                    .append(t.rewarmPending())
                    .append("</td><td class=\"err\">")
                    .append(esc(t.heldBy()
                            .map(b -> "another tier sweep holds the lock: " + b)
                            .or(t::lastError)
                            .orElse("")))
                    .append("</td></tr>");
        }
        h.append("</table></section>");
    }

    private static void componentsSection(StringBuilder h, View view) {
        h.append("<section id=\"components\"><h2>Engine</h2><table><tr><th>Component</th><th>State</th>"
                + "<th>Detail</th></tr>");
        for (EngineHealth.Component c : view.components()) {
            h.append("<tr><td>")
                    .append(esc(c.name()))
                    .append("</td><td>")
                    .append(
                            c.ready()
                                    ? "<span class=\"badge ok\">ready</span>"
                                    : "<span class=\"badge bad\">not ready</span>")
                    .append("</td><td>")
                    .append(esc(c.detail()))
                    .append("</td></tr>");
        }
        h.append("</table></section>");
    }

    /** {@code s} safe inside HTML text and double- or single-quoted attribute values. */
    static String esc(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder out = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }

    private static String ago(Instant at, Instant now) {
        Duration d = Duration.between(at, now);
        return d.isNegative() ? "just now" : Human.duration(d) + " ago";
    }
}
