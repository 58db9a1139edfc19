package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.GarbageCollector;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "gc",
        mixinStandardHelpOptions = true,
        description = {
            "Reclaim the chunks, index pages and roots no restore point references any more (after prune).",
            "Mark-and-sweep in two phases: a run records what is unreferenced; a later run deletes what has",
            "stayed unreferenced for the whole grace period and is still unreferenced right before the sweep.",
            "So run it regularly (e.g. daily, or `prune --gc`): the first run on a repository deletes nothing.",
            "Safe while backups, replication, restores and verify run; two gc runs exclude each other.",
            "",
            "Example:  tidemark gc --config engine.yaml --target offsite --grace 24h --dry-run",
        })
final class GcCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(
            names = {"--from", "--target"},
            defaultValue = "local",
            description = "what to collect: 'local' (default), a target of the engine config, a directory or s3://…")
    String target;

    @Option(
            names = "--grace",
            defaultValue = "24h",
            description = "how long an object must stay unreferenced before it is deleted; longer than your longest"
                    + " backup, replication or restore (default: 24h)")
    String grace;

    @Option(names = "--dry-run", description = "show what would be deleted now; record and delete nothing")
    boolean dryRun;

    @Option(names = "--json", description = "machine-readable output; no progress")
    boolean json;

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        Duration g = Targets.duration("--grace", grace);
        try (ObjectTarget t = Targets.named(c, target)) {
            GarbageCollector.Result r =
                    collect(Repository.open(t, engine.passphrases(c)), g, dryRun, !json && System.console() != null);
            if (json) {
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(toJson(t.describe(), r)));
            } else {
                print(System.out, t.describe(), g, r);
            }
        }
        return 0;
    }

    /** One collection run on {@code repo} (also used by {@code prune --gc}). */
    static GarbageCollector.Result collect(Repository repo, Duration grace, boolean dryRun, boolean tty) {
        return new GarbageCollector(repo, Clock.systemUTC(), GarbageCollector.Settings.withGrace(grace))
                .run(dryRun, (done, total) -> {
                    if (tty) {
                        System.err.printf("\rgc mark: %d/%d manifests%s", done, total, done == total ? "\n" : "");
                    }
                });
    }

    static void print(PrintStream out, String where, Duration grace, GarbageCollector.Result r) {
        out.printf("gc of %s: %d restore points marked, %d objects%n", where, r.manifests(), r.objects());
        out.printf(
                "  %s %d chunks, %d index pages, %d roots%n",
                r.dryRun() ? "would delete now:" : "deleted:",
                r.swept(ObjectKeys.CHUNKS),
                r.swept(ObjectKeys.PAGES),
                r.swept(ObjectKeys.ROOTS));
        out.printf(
                "  %d unreferenced objects %s (deleted once unreferenced for %s)%n",
                r.candidates(), r.dryRun() ? "would be recorded" : "recorded", grace);
        if (r.referencedAgain() > 0) {
            out.printf("  %d due objects kept: a restore point committed meanwhile uses them%n", r.referencedAgain());
        }
        if (r.locked() > 0) {
            out.printf("  %d due objects kept: under an immutability lock%n", r.locked());
        }
        r.deferred().ifPresent(d -> out.println("  sweep put off: " + d));
        if (r.dryRun()) {
            out.println("  dry run: nothing recorded or deleted");
        }
    }

    static ObjectNode toJson(String where, GarbageCollector.Result r) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("target", where);
        o.put("dryRun", r.dryRun());
        o.put("restorePoints", r.manifests());
        o.put("objects", r.objects());
        o.put("candidates", r.candidates());
        o.put("sweptChunks", r.swept(ObjectKeys.CHUNKS));
        o.put("sweptPages", r.swept(ObjectKeys.PAGES));
        o.put("sweptRoots", r.swept(ObjectKeys.ROOTS));
        o.put("referencedAgain", r.referencedAgain());
        o.put("locked", r.locked());
        o.put("deferred", r.deferred().orElse(null));
        r.swept().forEach(o.putArray("swept")::add);
        return o;
    }
}
