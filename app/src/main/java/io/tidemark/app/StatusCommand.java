package io.tidemark.app;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.repository.file.FileObjectTarget;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.RpoTracker;
import java.io.IOException;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "status",
        description = {
            "Show, per VM and location (local and each replication target), the newest restore point and",
            "its age (the achieved RPO) against the policy's RPO. Reads the repositories themselves, so it",
            "works while the engine is down. Exit 0 when every RPO is met, 4 when any is violated.",
            "Also shows the newest recovery drill per VM and location (`tidemark drill`): its check, and the",
            "measured RTO against the policy's rto.",
        })
final class StatusCommand implements Callable<Integer> {

    static final int EXIT_RPO_VIOLATED = 4;

    @Mixin
    EngineOptions engine;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        PolicySet set = engine.policies(c);
        Map<String, ObjectTarget> targets = Targets.open(c.targets());
        try (ObjectTarget primaryTarget = new FileObjectTarget(engine.repository(c))) {
            Repository primary = Repository.open(primaryTarget, engine.passphrases(c));
            InMemoryInventory inventory = new InMemoryInventory();
            primary.vms().forEach(vm -> inventory.put(vm, "-", Map.of()));
            RpoTracker tracker = new RpoTracker(set, inventory, Clock.systemUTC());
            RpoSources.seed(tracker, RpoSources.locations(primary, targets));
            List<RpoTracker.Status> status = tracker.status();
            List<DrillRecord> drills = DrillResults.read(primaryTarget, targets);
            if (json) {
                ArrayNode out = Json.mapper().createArrayNode();
                for (RpoTracker.Status s : status) {
                    ObjectNode o = out.addObject();
                    o.put("vm", s.vm());
                    o.put("location", s.location());
                    o.put("policy", s.policy());
                    o.put("rpoSeconds", s.rpo().toSeconds());
                    s.newestCapturedAt().ifPresent(t -> o.put("newestCapturedAt", t.toString()));
                    s.age().ifPresent(a -> o.put("ageSeconds", a.toSeconds()));
                    o.put("violated", s.violated());
                    drills.stream()
                            .filter(d -> d.vm().equals(s.vm()) && d.location().equals(s.location()))
                            .findFirst()
                            .ifPresent(d -> o.set("lastDrill", drillJson(d)));
                }
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            } else {
                System.out.printf(
                        "%-20s %-12s %-14s %-26s %10s %8s%n", "VM", "LOCATION", "POLICY", "NEWEST POINT", "AGE", "RPO");
                for (RpoTracker.Status s : status) {
                    System.out.printf(
                            "%-20s %-12s %-14s %-26s %10s %8s%s%n",
                            s.vm(),
                            s.location(),
                            s.policy(),
                            s.newestCapturedAt()
                                    .map(t -> t.truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                                            .toString())
                                    .orElse("none"),
                            s.age().map(StatusCommand::human).orElse("-"),
                            human(s.rpo()),
                            s.violated() ? "  VIOLATED" : "");
                }
                printDrills(drills);
            }
            return status.stream().anyMatch(RpoTracker.Status::violated) ? EXIT_RPO_VIOLATED : 0;
        } finally {
            targets.values().forEach(ObjectTarget::close);
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
                    d.rtoLimit().map(StatusCommand::human).orElse("-"),
                    d.rtoViolated() ? "  RTO VIOLATED" : "");
        }
    }

    /** A duration in at most two units: 45s, 5m, 1h, 1h30m, 2d3h. */
    static String human(java.time.Duration d) {
        long s = Math.max(0, d.toSeconds());
        long[] sizes = {86400, 3600, 60, 1};
        String[] units = {"d", "h", "m", "s"};
        StringBuilder out = new StringBuilder();
        int used = 0;
        for (int i = 0; i < sizes.length && used < 2; i++) {
            long n = s / sizes[i];
            if (n > 0 || (i == sizes.length - 1 && out.length() == 0)) {
                out.append(n).append(units[i]);
                s -= n * sizes[i];
                used++;
            } else if (used > 0) {
                used++; // a zero unit after the first ends the list: 2h, not 2h5s
            }
        }
        return out.toString();
    }
}
