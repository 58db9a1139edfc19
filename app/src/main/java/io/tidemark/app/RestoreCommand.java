package io.tidemark.app;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "restore",
        description = {
            "Rebuild the disk images of a restore point from any repository: the local one or a replication",
            "target (s3://…). Every restore point is logically full: no chain is replayed. Each chunk is",
            "verified against its digest; an image appears under its final name only when complete.",
            "",
            "Example:  tidemark restore --from 's3://backups/tm?endpoint=http://127.0.0.1:9000&path-style=true' \\",
            "            --vm web-1 --point latest --out /srv/restore/",
        })
final class RestoreCommand implements Callable<Integer> {

    @Mixin
    PassphraseOptions passphrase;

    @Option(
            names = "--from",
            required = true,
            description = "repository location: DIR or s3://BUCKET/PREFIX?endpoint=…")
    String from;

    @Option(names = "--vm", required = true, description = "the VM whose restore point to restore")
    String vm;

    @Option(names = "--point", defaultValue = "latest", description = "restore point id, or 'latest' (default)")
    String point;

    @Option(names = "--disk", description = "only this disk (default: every disk of the VM)")
    String disk;

    @Option(
            names = "--out",
            required = true,
            description = "output: a directory (one <disk>.raw per disk) or, with --disk, a file name")
    Path out;

    @Option(names = "--parallel", defaultValue = "8", description = "chunks fetched in parallel (default: 8)")
    int parallel;

    @Option(names = "--json", description = "print a JSON summary instead of text; no progress bar")
    boolean json;

    @Override
    public Integer call() throws IOException {
        try (ObjectTarget target = Locations.open(from)) {
            Repository repo = Repository.open(target, passphrase.source());
            Manifest m = "latest".equals(point)
                    ? repo.latest(vm)
                            .orElseThrow(() -> new PermanentException("no restore point of VM '" + vm + "' in "
                                    + repo.describe() + "; `tidemark list --from …` shows what there is"))
                    : repo.manifest(vm, point)
                            .orElseThrow(() -> new PermanentException("no restore point '" + point
                                    + "' of VM '" + vm + "' in " + repo.describe()
                                    + "; `tidemark list --from … --vm " + vm + "` shows the ids"));
            List<DiskEntry> disks = disk == null
                    ? m.disks()
                    : List.of(m.disk(disk)
                            .orElseThrow(() -> new PermanentException("restore point " + m.id() + " has no disk '"
                                    + disk + "'; it has "
                                    + m.disks().stream().map(DiskEntry::name).toList())));
            Restorer restorer = new Restorer(repo, parallel);
            ArrayNode results = Json.mapper().createArrayNode();
            for (DiskEntry d : disks) {
                Path file = disk != null && !Files.isDirectory(out) ? out : out.resolve(d.name() + ".raw");
                Files.createDirectories(file.toAbsolutePath().getParent());
                long t0 = System.nanoTime();
                Restorer.Result r = restorer.restoreDisk(
                        m, d.name(), file, new ProgressBar(System.err, d.name(), !json && System.console() != null));
                double secs = (System.nanoTime() - t0) / 1e9;
                ObjectNode o = results.addObject();
                o.put("vm", m.vm());
                o.put("restorePoint", m.id());
                o.put("capturedAt", m.capturedAt().toString());
                o.put("disk", d.name());
                o.put("image", file.toString());
                o.put("sizeBytes", r.sizeBytes());
                o.put("bytesFetched", r.bytesFetched());
                o.put("sha256", r.sha256());
                o.put("seconds", secs);
                if (!json) {
                    System.out.printf(
                            "restored %s of %s (%s, captured %s) to %s: %s, sha256 %s, %.1f s%n",
                            d.name(),
                            m.vm(),
                            m.id(),
                            m.capturedAt(),
                            file,
                            Human.bytes(r.sizeBytes()),
                            r.sha256(),
                            secs);
                }
            }
            if (json) {
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(results));
            }
        }
        return 0;
    }
}
