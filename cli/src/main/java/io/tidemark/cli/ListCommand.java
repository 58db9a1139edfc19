package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "list",
        description = {
            "List the restore points of a repository, oldest first per VM.",
            "",
            "The repository is any that restore reads: the engine's primary (local, the default), a target of",
            "the engine config by name, a directory or s3://….",
        },
        footerHeading = "%nExamples:%n",
        footer = {
            "  tidemark list --vm web-1",
            "  tidemark list --config /etc/tidemark/engine.yaml --from offsite --json",
            "  tidemark list --from 's3://tm-backups/prod?endpoint=https://s3.example&path-style=true'",
        })
final class ListCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(
            names = "--from",
            defaultValue = "local",
            paramLabel = "SOURCE",
            description = "where the points are: 'local' (the engine's primary repository, default), the name of a"
                    + " target in --config, a directory, or s3://BUCKET/PREFIX?endpoint=URL&path-style=true")
    String from;

    @Option(names = "--vm", description = "only this VM")
    String vm;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws java.io.IOException {
        io.tidemark.engine.EngineConfig c = engine.engineConfig();
        try (ObjectTarget target = engine.source(c, from)) {
            Repository repo = Repository.open(target, engine.passphrases(c));
            List<String> vms = vm != null ? List.of(vm) : repo.vms();
            ArrayNode out = Json.mapper().createArrayNode();
            List<Repository.UnreadableManifest> unreadable = new ArrayList<>();
            for (String v : vms) {
                Map<String, PointMark> marks = repo.marks(v);
                Repository.Listing listing = repo.listing(v);
                unreadable.addAll(listing.unreadable());
                for (Manifest m : listing.points()) {
                    Optional<PointMark> mark = Optional.ofNullable(marks.get(m.id()));
                    if (json) {
                        ObjectNode o = Json.mapper().valueToTree(m);
                        mark.ifPresent(k -> o.set("mark", Json.mapper().valueToTree(k)));
                        out.add(o);
                    } else {
                        printLine(m, mark);
                    }
                }
            }
            if (json) {
                JsonOutput.print(out);
            }
            warn(unreadable, from);
        }
        return 0;
    }

    private static void printLine(Manifest m, Optional<PointMark> mark) {
        System.out.printf(
                "%-28s %-16s %-11s %10s read of %10s  %s  %s%s%n",
                m.id(),
                m.vm(),
                m.incremental() ? "incremental" : "full",
                Human.bytes(m.bytesRead()),
                Human.bytes(m.sizeBytes()),
                m.capturedAt(),
                RestorePointSelector.tag(m).orElse(m.trigger().kind().spelling()),
                mark.map(k -> "  " + k.kind().name().toLowerCase(java.util.Locale.ROOT) + ": " + k.reason())
                        .orElse(""));
    }

    /**
     * Names each unreadable manifest on stderr (the listing above shows every readable point): its
     * key, the restore point it would be, why, and what to do.
     */
    static void warn(List<Repository.UnreadableManifest> unreadable, String location) {
        for (Repository.UnreadableManifest u : unreadable) {
            System.err.printf(
                    "warning: restore point %s of VM %s cannot be read and is not listed: %s%n",
                    u.id(), u.vm(), u.reason());
        }
        if (!unreadable.isEmpty()) {
            System.err.printf(
                    "warning: %d manifests cannot be read; the other restore points are intact. Check and repair:"
                            + " tidemark verify --target %s --repair-from OTHER%n",
                    unreadable.size(), location);
        }
    }
}
