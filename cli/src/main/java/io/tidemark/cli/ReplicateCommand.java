package io.tidemark.cli;

import io.tidemark.core.Human;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.replicator.Replicator;
import io.tidemark.repository.Repository;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "replicate",
        description = {
            "Copy restore points from one repository to another.",
            "Copy restore points from one repository to another: seed a new target from an existing one",
            "(e.g. a local copy carried to the DR site), or catch a target up by hand. Only objects the",
            "destination lacks are sent; every object is verified first; manifests go last. Idempotent.",
            "",
            "Example:  tidemark replicate --from /mnt/usb/tidemark \\",
            "            --to 's3://dr-bucket/tm?endpoint=https://s3.dr.example&path-style=true' --vm web-1",
            "  tidemark replicate --config /etc/tidemark/engine.yaml --from local --to offsite",
        })
final class ReplicateCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Mixin
    ColdWaitOption cold;

    @Option(
            names = "--from",
            required = true,
            paramLabel = "SOURCE",
            description = "source repository: local, a target of --config by name, DIR or s3://BUCKET/PREFIX?…")
    String from;

    @Option(
            names = "--to",
            required = true,
            paramLabel = "DESTINATION",
            description = "destination repository: local, a target of --config by name, DIR or s3://BUCKET/PREFIX?…")
    String to;

    @Option(names = "--vm", description = "only this VM (default: every VM)")
    String vm;

    @Option(names = "--point", description = "only this restore point id (default: all)")
    String point;

    @Option(names = "--parallel", defaultValue = "8", description = "uploads in flight (default: 8)")
    int parallel;

    @Option(names = "--json", description = "print one JSON summary (each point and what was sent) instead of text")
    boolean json;

    @Override
    public Integer call() {
        com.fasterxml.jackson.databind.node.ObjectNode summary =
                io.tidemark.format.Json.mapper().createObjectNode();
        com.fasterxml.jackson.databind.node.ArrayNode copied = summary.putArray("restorePoints");
        io.tidemark.engine.EngineConfig c = engine.engineConfig();
        try (ObjectTarget source = engine.source(c, from);
                ObjectTarget destination = engine.source(c, to);
                Replicator replicator = new Replicator(
                        Repository.open(source, engine.passphrases(c)), Map.of("destination", destination), parallel)) {
            Repository repo = Repository.open(source, engine.passphrases(c));
            if (cold.given()) { // every point to copy, at once: their restores run side by side
                List<Manifest> toCopy = new java.util.ArrayList<>();
                for (String v : vm != null ? List.of(vm) : repo.vms()) {
                    for (Manifest m : repo.manifests(v)) {
                        if (point == null || point.equals(m.id())) {
                            toCopy.add(m);
                        }
                    }
                }
                cold.prepare(source, repo, toCopy, ColdWaitOption.disk(null), json ? null : System.err);
            }
            long objects = 0;
            long bytes = 0;
            int points = 0;
            for (String v : vm != null ? List.of(vm) : repo.vms()) {
                for (Manifest m : repo.manifests(v)) { // oldest first, so each incremental finds its parent there
                    if (point != null && !point.equals(m.id())) {
                        continue;
                    }
                    Replicator.Result r = replicator.replicate(v, m.id(), "destination");
                    objects += r.objectsSent();
                    bytes += r.bytesSent();
                    points++;
                    copied.addObject()
                            .put("vm", v)
                            .put("restorePoint", m.id())
                            .put(
                                    "outcome",
                                    r.alreadyThere() ? "already-there" : r.pruned() ? "pruned-from-source" : "copied")
                            .put("objectsSent", r.objectsSent())
                            .put("bytesSent", r.bytesSent());
                    if (json) {
                        continue;
                    }
                    System.out.printf(
                            "%s %s: %s%n",
                            v,
                            m.id(),
                            r.alreadyThere()
                                    ? "already there"
                                    : r.pruned()
                                            ? "pruned from the source meanwhile, not copied"
                                            : r.objectsSent() + " objects, " + Human.bytes(r.bytesSent()));
                }
            }
            if (json) {
                summary.put("destination", destination.describe());
                summary.put("objectsSent", objects);
                summary.put("bytesSent", bytes);
                JsonOutput.print(summary);
                return 0;
            }
            System.out.printf(
                    "%d restore points in %s; sent %d objects, %s%n",
                    points, destination.describe(), objects, Human.bytes(bytes));
        }
        return 0;
    }
}
