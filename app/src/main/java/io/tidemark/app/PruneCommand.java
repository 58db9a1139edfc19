package io.tidemark.app;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.replicator.Pruner;
import io.tidemark.repository.Repository;
import io.tidemark.repository.file.FileObjectTarget;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "prune",
        description = {
            "Apply each policy's retention (local, and per replication target): remove the restore points",
            "it no longer keeps. Never removes the newest point, a local point not yet on every target its",
            "policy requires, a point under an immutability lock, or points of VMs no policy selects.",
            "Removes manifests only; their chunks are reclaimed by garbage collection. Try --dry-run first.",
        })
final class PruneCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(names = "--dry-run", description = "show what would be removed; change nothing")
    boolean dryRun;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        PolicySet set = engine.policies(c);
        Map<String, ObjectTarget> targets = Targets.open(c.targets());
        try (ObjectTarget primaryTarget = new FileObjectTarget(engine.repository(c))) {
            Repository primary = Repository.open(primaryTarget, engine.passphrases(c));
            Map<String, Repository> targetRepos = Targets.repositories(primary, targets);
            Pruner pruner = new Pruner(primary, targetRepos, Targets.locks(targets));
            List<Pruner.Decision> plan = pruner.plan(set, Instant.now());
            int removed = dryRun ? 0 : pruner.apply(plan);
            long toRemove = plan.stream().filter(d -> !d.keep()).count();
            if (json) {
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
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            } else {
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
                        dryRun ? toRemove : removed);
            }
        } finally {
            targets.values().forEach(ObjectTarget::close);
        }
        return 0;
    }
}
