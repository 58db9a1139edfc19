package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.replicator.Pruner;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.GarbageCollector;
import io.tidemark.targets.TargetSpec;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "prune",
        description = {
            "Remove the restore points that no policy keeps any more.",
            "Apply each policy's retention (local, and per replication target): remove the restore points",
            "it no longer keeps. Never removes the newest point, a local point not yet on every target its",
            "policy requires, a point under an immutability lock, or points of VMs no policy selects.",
            "A policy's capacity budget (budget:) removes the oldest other points while the VM's points at a",
            "location occupy more than it; what stays over budget is printed.",
            "Removes manifests only; their chunks are reclaimed by garbage collection (`tidemark gc`, or --gc",
            "here to collect every location right after). Try --dry-run first.",
            "",
            "Example:  tidemark prune --config engine.yaml --gc --grace 24h",
        })
final class PruneCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(names = "--dry-run", description = "show what would be removed; change nothing")
    boolean dryRun;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Option(names = "--gc", description = "then run garbage collection at every location (see `tidemark gc`)")
    boolean gc;

    @Option(
            names = "--grace",
            defaultValue = "24h",
            description = "with --gc: how long an object must stay unreferenced before it is deleted (default: 24h)")
    String grace;

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        PolicySet set = engine.policies(c);
        Map<String, ObjectTarget> targets = TargetSpec.openAll(c.targets());
        try (ObjectTarget primaryTarget = engine.primary(c)) {
            Repository primary = Repository.open(primaryTarget, engine.passphrases(c));
            Map<String, Repository> targetRepos = Targets.repositories(primary, targets);
            Pruner pruner = new Pruner(primary, targetRepos, Targets.locks(targets));
            Pruner.Plan review = pruner.review(set, Instant.now());
            List<Pruner.Decision> plan = review.decisions();
            int removed = dryRun ? 0 : pruner.apply(plan);
            long toRemove = plan.stream().filter(d -> !d.keep()).count();
            Map<String, GarbageCollector.Result> collected = new LinkedHashMap<>();
            if (gc) {
                Duration g = Targets.duration("--grace", grace);
                Map<String, Repository> all = new LinkedHashMap<>();
                all.put(Pruner.LOCAL, primary);
                all.putAll(targetRepos);
                all.forEach((name, repo) ->
                        collected.put(name, GcCommand.collect(repo, g, dryRun, !json && System.console() != null)));
            }
            if (json) {
                printJson(plan, collected);
            } else {
                printText(plan, dryRun ? toRemove : removed, collected);
                review.overBudget()
                        .forEach(o -> System.out.printf(
                                "over budget: %s at %s occupies %s of its %s budget (policy %s) after pruning; restore point"
                                        + " %s needed %s; kept: %s (docs/runbooks/budget-exceeded.md)%n",
                                o.vm(),
                                o.location(),
                                io.tidemark.policies.SizeSyntax.format(o.usedBytes()),
                                io.tidemark.policies.SizeSyntax.format(o.budgetBytes()),
                                o.policy(),
                                o.newestPointId(),
                                io.tidemark.policies.SizeSyntax.format(o.neededBytes()),
                                o.held()));
            }
        } finally {
            targets.values().forEach(ObjectTarget::close);
        }
        return 0;
    }

    private void printJson(List<Pruner.Decision> plan, Map<String, GarbageCollector.Result> collected)
            throws IOException {
        if (gc) {
            ObjectNode both = Json.mapper().createObjectNode();
            ArrayNode decisions = both.putArray("decisions");
            decisions.addAll(decisions(plan));
            ObjectNode gcs = both.putObject("gc");
            collected.forEach((name, r) -> gcs.set(name, GcCommand.toJson(name, r)));
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(both));
        } else {
            ArrayNode out = decisions(plan);
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        }
    }

    /** @param count the points removed, or (dry run) that would be */
    private void printText(List<Pruner.Decision> plan, long count, Map<String, GarbageCollector.Result> collected) {
        for (Pruner.Decision d : plan) {
            System.out.printf(
                    "%-10s %-16s %-28s %-6s %s%n",
                    d.location(),
                    d.vm(),
                    d.restorePointId(),
                    d.keep() ? "keep" : dryRun ? "WOULD REMOVE" : "removed",
                    d.reason());
        }
        System.out.printf(
                dryRun
                        ? "%d restore points would be removed (dry run: nothing changed)%n"
                        : "%d restore points removed%n",
                count);
        Duration g = gc ? Targets.duration("--grace", grace) : null;
        collected.forEach((name, r) -> GcCommand.print(System.out, name, g, r));
    }

    private static ArrayNode decisions(List<Pruner.Decision> plan) {
        ArrayNode out = Json.mapper().createArrayNode();
        for (Pruner.Decision d : plan) {
            ObjectNode o = out.addObject();
            o.put("location", d.location());
            o.put("vm", d.vm());
            o.put("restorePoint", d.restorePointId());
            o.put("capturedAt", d.capturedAt().toString());
            o.put("keep", d.keep());
            o.put("reason", d.reason());
        }
        return out;
    }
}
