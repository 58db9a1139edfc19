package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Locations;
import io.tidemark.engine.Targets;
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
        description = "List the restore points in a repository (local directory or s3://…, or with --config 'local'"
                + " or a target's name).")
final class ListCommand implements Callable<Integer> {

    @Mixin
    PassphraseOptions passphrase;

    @Option(
            names = "--from",
            required = true,
            description = "repository location: DIR or s3://BUCKET/PREFIX?endpoint=…; with --config also 'local' (the"
                    + " engine's primary repository, repository: of the config) or a target's name")
    String from;

    @Option(names = "--config", description = "engine config YAML: 'local' and target names in --from")
    java.nio.file.Path config;

    @Option(names = "--vm", description = "only this VM")
    String vm;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws java.io.IOException {
        EngineConfig c = config == null ? null : EngineConfig.load(config);
        try (ObjectTarget target = c == null ? Locations.open(from) : Targets.named(c, from)) {
            Repository repo = Repository.open(target, c == null ? passphrase.source() : passphrase.source(c));
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
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
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
