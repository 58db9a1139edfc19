package io.tidemark.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.PolicySet;
import io.tidemark.replicator.ReplicaGap;
import io.tidemark.replicator.TierSweep;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "status",
        description = {
            "Show the achieved RPO of every VM at every location.",
            "Show, per VM and location (local and each replication target), the newest restore point and",
            "its age (the achieved RPO) against the policy's RPO, and per target how many restore points it",
            "lacks (the engine's reconciliation ships them) and since when. Reads the repositories themselves,",
            "so it works while the engine is down. A target that cannot be read is marked UNREACHABLE with",
            "the error and what to do; the other locations are still shown.",
            "Exit 0 when every RPO is met, 4 when any is violated, 5 when no RPO is violated but a location",
            "could not be read (partial results).",
            "Also shows the newest recovery drill per VM and location (`tidemark drill`): its check, and the",
            "measured RTO against the policy's rto.",
            "While the engine runs with statusPage: in its config, its status page shows the same view from",
            "the engine's memory, plus running jobs and recent failures with their reasons:",
            "http://127.0.0.1:9464/status (the metrics address; token from statusPage.tokenFile;",
            "docs/monitoring.md).",
            "VMs of mode: continuous policies have no restore points here: their mirror (location dr-mirror:",
            "phase and lag) and their DR points (location dr-points: the newest one's age) live in the",
            "engine's memory, so status asks the engine's status page for them (marked ENGINE DOWN when it",
            "does not answer; exit 5).",
        },
        footerHeading = "%nExamples:%n",
        footer = {
            "  tidemark status --config /etc/tidemark/engine.yaml",
            "  tidemark status --config /etc/tidemark/engine.yaml --json | jq '.[] | select(.violated)'",
        })
final class StatusCommand implements Callable<Integer> {

    static final int EXIT_RPO_VIOLATED = 4;
    /** Some location could not be read; what could be read is shown. */
    static final int EXIT_PARTIAL = 5;

    @Mixin
    EngineOptions engine;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Option(
            names = "--timeout",
            description = "how long each target may take to answer before it is marked unreachable (default: 20s)",
            defaultValue = "20s")
    String timeout;

    /** What could be read from one target, or why not. */
    private record TargetRead(
            String name,
            Map<String, Instant> newest,
            Map<String, Set<String>> ids,
            List<DrillRecord> drills,
            Optional<String> error) {
        static TargetRead failed(String name, String error) {
            return new TargetRead(name, Map.of(), Map.of(), List.of(), Optional.of(error));
        }
    }

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        PolicySet set = engine.policies(c);
        Duration wait = Targets.duration("--timeout", timeout);
        Map<String, ObjectTarget> targets = new LinkedHashMap<>();
        Map<String, String> unopened = new LinkedHashMap<>();
        c.targets().forEach((name, tc) -> {
            try {
                targets.put(name, tc.open(name));
            } catch (RuntimeException e) { // the other locations are still shown
                unopened.put(name, String.valueOf(e.getMessage()));
            }
        });
        ExecutorService reads = Executors.newCachedThreadPool(DaemonThreads.named("status-read"));
        try (ObjectTarget primaryTarget = engine.primary(c)) {
            Repository primary = Repository.open(primaryTarget, engine.passphrases(c));
            List<String> vms = primary.vms();
            Map<String, List<Manifest>> points = new LinkedHashMap<>();
            vms.forEach(vm -> points.put(vm, primary.manifests(vm)));
            Map<String, TargetRead> read = readAll(
                    c.targets().keySet(), targets, unopened, reads, wait, (name, t) -> read(name, t, primary, vms));
            List<RpoTracker.Status> status = rpoStatus(set, points, read);
            List<DrillRecord> drills = new ArrayList<>(new DrillLog(primaryTarget).latestPerVm());
            read.values().forEach(r -> drills.addAll(r.drills()));
            Map<String, Map<String, List<Manifest>>> missing = missing(set, primary, points, read);
            Instant now = Instant.now();
            boolean sweeps = c.targets().keySet().stream()
                    .anyMatch(t -> !TierSweep.classesAt(set, t).isEmpty());
            Continuous continuous = set.continuous().isEmpty() && !sweeps
                    ? new Continuous(List.of(), Optional.empty())
                    : readContinuous(c, wait);
            if (set.continuous().isEmpty() && !engineStatusPage(c)) {
                continuous = new Continuous(List.of(), Optional.empty()); // tier sweeps unknown: not an error
            }
            boolean violated =
                    status.stream().filter(s -> reachable(read, s.location())).anyMatch(RpoTracker.Status::violated)
                            || continuous.rows().stream()
                                    .anyMatch(r -> r.path("violated").asBoolean());
            boolean partial = read.values().stream().anyMatch(r -> r.error().isPresent())
                    || continuous.error().isPresent();
            if (json) {
                printJson(status, read, missing, drills, continuous);
            } else {
                printTable(status, read, drills, missing, now);
                printContinuous(continuous);
                printTiers(continuous, sweeps && engineStatusPage(c), now);
            }
            if (violated) {
                return EXIT_RPO_VIOLATED;
            }
            return partial ? EXIT_PARTIAL : 0;
        } finally {
            reads.shutdownNow();
            targets.values().forEach(ObjectTarget::close);
        }
    }

    /**
     * Every target's read, in the config's order: each on a thread of its own, bounded by {@code wait}, so
     * one that hangs costs only its own row; one that could not be opened is a failed read.
     */
    private static Map<String, TargetRead> readAll(
            Set<String> names,
            Map<String, ObjectTarget> targets,
            Map<String, String> unopened,
            ExecutorService reads,
            Duration wait,
            java.util.function.BiFunction<String, ObjectTarget, TargetRead> reader) {
        Map<String, Future<TargetRead>> pending = new LinkedHashMap<>();
        targets.forEach((name, t) -> pending.put(name, reads.submit(() -> reader.apply(name, t))));
        Map<String, TargetRead> read = new LinkedHashMap<>();
        names.forEach(name -> {
            if (unopened.containsKey(name)) {
                read.put(name, TargetRead.failed(name, unopened.get(name)));
            } else {
                read.put(name, await(name, targets.get(name), pending.get(name), wait));
            }
        });
        return read;
    }

    /** Each VM's RPO at each location, from the newest point the primary and each read target hold. */
    private static List<RpoTracker.Status> rpoStatus(
            PolicySet set, Map<String, List<Manifest>> points, Map<String, TargetRead> read) {
        InMemoryInventory inventory = new InMemoryInventory();
        points.keySet().forEach(vm -> inventory.put(vm, "-", Map.of()));
        RpoTracker tracker = new RpoTracker(set, inventory, Clock.systemUTC());
        points.forEach((vm, list) -> {
            if (!list.isEmpty()) {
                tracker.record(vm, RpoTracker.LOCAL, list.get(list.size() - 1).capturedAt());
            }
        });
        read.values().forEach(r -> r.newest().forEach((vm, at) -> tracker.record(vm, r.name(), at)));
        return tracker.status();
    }

    /** Per readable target, per VM: the points it should hold and lacks ({@link ReplicaGap}). */
    private static Map<String, Map<String, List<Manifest>>> missing(
            PolicySet set, Repository primary, Map<String, List<Manifest>> points, Map<String, TargetRead> read) {
        Map<String, Map<String, List<Manifest>>> missing = new LinkedHashMap<>();
        read.values().forEach(r -> {
            if (r.error().isEmpty()) {
                Map<String, List<Manifest>> perVm = new LinkedHashMap<>();
                points.forEach((vm, list) -> {
                    List<Manifest> m = ReplicaGap.missing(
                            set, r.name(), vm, list, primary.marks(vm), r.ids().getOrDefault(vm, Set.of()));
                    if (!m.isEmpty()) {
                        perVm.put(vm, m);
                    }
                });
                missing.put(r.name(), perVm);
            }
        });
        return missing;
    }

    private static boolean reachable(Map<String, TargetRead> read, String location) {
        TargetRead r = read.get(location);
        return r == null || r.error().isEmpty();
    }

    /** Everything status needs from one target; throws what the target throws. */
    private static TargetRead read(String name, ObjectTarget t, Repository primary, List<String> vms) {
        if (!t.exists(ObjectKeys.CONFIG)) {
            return new TargetRead(name, Map.of(), Map.of(), List.of(), Optional.empty());
        }
        Repository repo = primary.replicaOn(t);
        Map<String, Set<String>> ids = new LinkedHashMap<>();
        for (String vm : vms) {
            Set<String> there = new java.util.HashSet<>();
            for (String key : t.list(ObjectKeys.manifestPrefix(vm))) {
                String id = ObjectKeys.restorePointIdOf(key);
                if (id != null) {
                    there.add(id);
                }
            }
            ids.put(vm, there);
        }
        // the newest point per VM is what RPO needs: read it now, inside the time bound
        Map<String, Instant> newest = new LinkedHashMap<>();
        for (String vm : repo.vms()) {
            repo.latest(vm).ifPresent(m -> newest.put(vm, m.capturedAt()));
        }
        return new TargetRead(name, newest, ids, new DrillLog(t).latestPerVm(), Optional.empty());
    }

    private static TargetRead await(String name, ObjectTarget t, Future<TargetRead> f, Duration wait) {
        try {
            return f.get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            return TargetRead.failed(
                    name,
                    t.describe() + " did not answer within " + Human.duration(wait)
                            + "; check that it is up and reachable from here, or wait longer with --timeout");
        } catch (ExecutionException e) {
            return TargetRead.failed(
                    name,
                    e.getCause().getMessage()
                            + (e.getCause() instanceof io.tidemark.core.PermanentException
                                    ? "; check the target's settings and credentials in the engine config"
                                    : "; check that it is up and reachable from here, then run status again"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return TargetRead.failed(name, "interrupted");
        }
    }

    /**
     * The continuous VMs' rows ({@code dr-mirror}, {@code dr-points}) from the engine's status page,
     * each {@code {vm, location, policy, rpoSeconds, ageSeconds, newestCapturedAt, violated, state}};
     * or why they could not be read.
     */
    record Continuous(List<JsonNode> rows, List<JsonNode> tiers, Optional<String> error) {
        Continuous(List<JsonNode> rows, Optional<String> error) {
            this(rows, List.of(), error);
        }
    }

    /** Locations the engine measures from memory: the mirror and the DR points (ADR 19). */
    static final Set<String> ENGINE_LOCATIONS = Set.of("dr-mirror", "dr-points");

    /** Reads the continuous VMs' rows from the engine's {@code /status.json} (the status page's own source). */
    static Continuous readContinuous(EngineConfig c, Duration wait) {
        if (!engineStatusPage(c)) {
            return new Continuous(
                    List.of(),
                    Optional.of("the mirror lag and DR points of continuous policies are in the engine's memory, shown"
                            + " on its status page, which is off: set statusPage: {tokenFile: ...} and metrics: in the"
                            + " engine config"));
        }
        String address = c.metrics().replaceFirst("^(0\\.0\\.0\\.0)?:", "127.0.0.1:");
        URI uri = URI.create("http://" + address + "/status.json");
        try {
            String token = Files.readString(c.statusPage().tokenFile()).strip();
            HttpResponse<String> r = HttpClient.newBuilder()
                    .connectTimeout(wait)
                    .build()
                    .send(
                            HttpRequest.newBuilder(uri)
                                    .header("Authorization", "Bearer " + token)
                                    .timeout(wait)
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                return new Continuous(
                        List.of(),
                        Optional.of("the engine's status page " + uri + " answered HTTP " + r.statusCode()
                                + "; check statusPage.tokenFile"));
            }
            List<JsonNode> rows = new ArrayList<>();
            JsonNode page = Json.mapper().readTree(r.body());
            List<JsonNode> tiers = new ArrayList<>();
            for (JsonNode t : page.path("tierSweeps")) {
                ObjectNode row = Json.mapper().createObjectNode();
                row.put("tierSweep", t.path("target").asText());
                row.setAll((ObjectNode) t);
                row.remove("target");
                row.put("source", "engine");
                tiers.add(row);
            }
            for (JsonNode vm : page.path("vms")) {
                for (JsonNode l : vm.path("locations")) {
                    if (ENGINE_LOCATIONS.contains(l.path("location").asText())) {
                        ObjectNode row = Json.mapper().createObjectNode();
                        row.put("vm", vm.path("name").asText());
                        row.put("location", l.path("location").asText());
                        row.put("policy", vm.path("policy").asText(""));
                        row.put("rpoSeconds", l.path("rpoSeconds").asLong());
                        if (l.has("ageSeconds")) {
                            row.put("ageSeconds", l.path("ageSeconds").asLong());
                        }
                        if (l.has("newestCapturedAt")) {
                            row.put(
                                    "newestCapturedAt",
                                    l.path("newestCapturedAt").asText());
                        }
                        row.put("violated", l.path("violated").asBoolean());
                        if (l.has("state")) {
                            row.put("state", l.path("state").asText());
                        }
                        row.put("source", "engine");
                        rows.add(row);
                    }
                }
            }
            return new Continuous(rows, tiers, Optional.empty());
        } catch (IOException e) {
            return new Continuous(
                    List.of(),
                    Optional.of("the engine's status page " + uri + " does not answer (" + e
                            + "); mirror lag and DR points unknown: is the engine running?"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Continuous(List.of(), Optional.of("interrupted"));
        }
    }

    /** Whether the engine serves its status page ({@code /status.json}), the source of its in-memory rows. */
    static boolean engineStatusPage(EngineConfig c) {
        return c.metrics() != null
                && !c.metrics().isBlank()
                && c.statusPage() != null
                && c.statusPage().enabled();
    }

    /** Each target's tier sweep, as the engine last saw it (ADR 20): from its status page, from memory. */
    private static void printTiers(Continuous continuous, boolean shown, Instant now) {
        if (continuous.tiers().isEmpty()) {
            if (!shown) {
                return;
            }
            System.out.printf(
                    "%nTIER SWEEPS  %s%n",
                    continuous
                            .error()
                            .map(e -> "unknown (engine down)")
                            .orElse(
                                    "none yet (the engine sweeps every tierSweep.every, first tierSweep.first after start)"));
            return;
        }
        System.out.printf(
                "%n%-20s %-8s %-12s %8s %8s  %s%n", "TIER SWEEP TARGET", "STATE", "LAST SWEEP", "TAGGED", "REWARM", "");
        for (JsonNode t : continuous.tiers()) {
            String last = t.has("lastAttempt")
                    ? Human.duration(Duration.between(
                                    Instant.parse(t.path("lastAttempt").asText()), now)) + " ago"
                    : "never";
            String detail = t.has("heldBy")
                    ? "held by another tier sweep: " + t.path("heldBy").asText()
                    : t.path("error").asText("");
            System.out.printf(
                    "%-20s %-8s %-12s %8s %8s  %s%n",
                    t.path("tierSweep").asText(),
                    t.path("state").asText("-"),
                    last,
                    t.has("taggedLast") ? t.path("taggedLast").asText() : "-",
                    t.path("rewarmPending").asText("0"),
                    detail);
        }
    }

    private static void printContinuous(Continuous continuous) {
        if (continuous.rows().isEmpty() && continuous.error().isEmpty()) {
            return;
        }
        System.out.printf(
                "%n%-20s %-12s %-14s %-26s %10s %8s  %s%n",
                "CONTINUOUS VM", "LOCATION", "POLICY", "STATE", "AGE/LAG", "RPO", "");
        continuous.error().ifPresent(e -> System.out.println("ENGINE DOWN  " + e));
        for (JsonNode r : continuous.rows()) {
            System.out.printf(
                    "%-20s %-12s %-14s %-26s %10s %8s%s%n",
                    r.path("vm").asText(),
                    r.path("location").asText(),
                    r.path("policy").asText(),
                    r.path("state").asText("-"),
                    r.has("ageSeconds")
                            ? Human.duration(
                                    Duration.ofSeconds(r.path("ageSeconds").asLong()))
                            : "-",
                    Human.duration(Duration.ofSeconds(r.path("rpoSeconds").asLong())),
                    r.path("violated").asBoolean() ? "  VIOLATED" : "");
        }
    }

    private void printJson(
            List<RpoTracker.Status> status,
            Map<String, TargetRead> read,
            Map<String, Map<String, List<Manifest>>> missing,
            List<DrillRecord> drills,
            Continuous continuous)
            throws IOException {
        ArrayNode out = Json.mapper().createArrayNode();
        continuous.rows().forEach(out::add);
        continuous.tiers().forEach(out::add);
        continuous.error().ifPresent(e -> out.addObject()
                .put("location", "engine")
                .put("source", "engine")
                .put("reachable", false)
                .put("error", e));
        for (RpoTracker.Status s : status) {
            ObjectNode o = out.addObject();
            o.put("vm", s.vm());
            o.put("location", s.location());
            o.put("policy", s.policy());
            o.put("rpoSeconds", s.rpo().toSeconds());
            TargetRead r = read.get(s.location());
            if (r != null && r.error().isPresent()) {
                o.put("reachable", false);
                o.put("error", r.error().get());
                continue;
            }
            o.put("reachable", true);
            s.newestCapturedAt().ifPresent(t -> o.put("newestCapturedAt", t.toString()));
            s.age().ifPresent(a -> o.put("ageSeconds", a.toSeconds()));
            o.put("violated", s.violated());
            if (missing.containsKey(s.location())) {
                List<Manifest> m = missing.get(s.location()).getOrDefault(s.vm(), List.of());
                o.put("missingPoints", m.size());
                if (!m.isEmpty()) {
                    o.put("oldestMissingCapturedAt", m.get(0).capturedAt().toString());
                }
            }
            drills.stream()
                    .filter(d -> d.vm().equals(s.vm()) && d.location().equals(s.location()))
                    .findFirst()
                    .ifPresent(d -> o.set("lastDrill", drillJson(d)));
        }
        System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
    }

    private static void printTable(
            List<RpoTracker.Status> status,
            Map<String, TargetRead> read,
            List<DrillRecord> drills,
            Map<String, Map<String, List<Manifest>>> missing,
            Instant now) {
        System.out.printf(
                "%-20s %-12s %-14s %-26s %10s %8s%n", "VM", "LOCATION", "POLICY", "NEWEST POINT", "AGE", "RPO");
        for (RpoTracker.Status s : status) {
            TargetRead r = read.get(s.location());
            boolean down = r != null && r.error().isPresent();
            System.out.printf(
                    "%-20s %-12s %-14s %-26s %10s %8s%s%n",
                    s.vm(),
                    s.location(),
                    s.policy(),
                    down
                            ? "UNREACHABLE"
                            : s.newestCapturedAt()
                                    .map(t -> t.truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                                            .toString())
                                    .orElse("none"),
                    down ? "?" : s.age().map(Human::duration).orElse("-"),
                    Human.duration(s.rpo()),
                    down ? "" : s.violated() ? "  VIOLATED" : "");
        }
        printTargets(read, missing, now);
        printDrills(drills);
    }

    /** Per target: reachable or not, how many points it lacks and the oldest of them. */
    private static void printTargets(
            Map<String, TargetRead> read, Map<String, Map<String, List<Manifest>>> missing, Instant now) {
        if (read.isEmpty()) {
            return;
        }
        System.out.printf("%n%-12s %-12s %8s %14s  %s%n", "TARGET", "STATE", "MISSING", "OLDEST MISSING", "");
        for (TargetRead r : read.values()) {
            if (r.error().isPresent()) {
                System.out.printf(
                        "%-12s %-12s %8s %14s  %s%n",
                        r.name(), "UNREACHABLE", "?", "?", r.error().get());
                continue;
            }
            Map<String, List<Manifest>> lacking = missing.getOrDefault(r.name(), Map.of());
            int count = lacking.values().stream().mapToInt(List::size).sum();
            Optional<Instant> oldest =
                    lacking.values().stream().map(l -> l.get(0).capturedAt()).min(Instant::compareTo);
            System.out.printf(
                    "%-12s %-12s %8d %14s  %s%n",
                    r.name(),
                    "ok",
                    count,
                    oldest.map(t -> Human.duration(Duration.between(t, now)) + " ago")
                            .orElse("-"),
                    count == 0
                            ? ""
                            : "by VM "
                                    + lacking.entrySet().stream()
                                            .map(e -> e.getKey() + "="
                                                    + e.getValue().size())
                                            .toList()
                                    + "; the engine's reconciliation ships them (or `tidemark replicate`)");
        }
    }

    private static ObjectNode drillJson(DrillRecord d) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("restorePoint", d.restorePoint());
        o.put("at", d.at().toString());
        o.put("check", d.check());
        o.put("passed", d.passed());
        o.put("rtoSeconds", d.rtoMillis() / 1000.0);
        d.rtoLimit().ifPresent(l -> o.put("rtoLimitSeconds", l.toSeconds()));
        o.put("rtoViolated", d.rtoViolated());
        return o;
    }

    private static void printDrills(List<DrillRecord> drills) {
        if (drills.isEmpty()) {
            System.out.println("no recovery drill recorded yet (`tidemark drill --vm VM`)");
            return;
        }
        System.out.printf(
                "%n%-20s %-12s %-26s %-16s %-7s %10s %8s%n",
                "LAST DRILL", "LOCATION", "AT", "CHECK", "RESULT", "RTO", "LIMIT");
        for (DrillRecord d : drills) {
            System.out.printf(
                    "%-20s %-12s %-26s %-16s %-7s %10s %8s%s%n",
                    d.vm(),
                    d.location(),
                    d.at().truncatedTo(java.time.temporal.ChronoUnit.SECONDS),
                    d.check(),
                    d.passed() ? "passed" : "FAILED",
                    FailoverCommand.seconds(d.rto()),
                    d.rtoLimit().map(Human::duration).orElse("-"),
                    d.rtoViolated() ? "  RTO VIOLATED" : "");
        }
    }
}
