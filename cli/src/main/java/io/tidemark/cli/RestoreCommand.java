package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.repository.DiskSink;
import io.tidemark.repository.RawFileSink;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.restore.Qcow2FileSink;
import io.tidemark.workers.restore.QemuNbdDiskSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "restore",
        mixinStandardHelpOptions = true,
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:every disk restored",
            "1:bad input: a malformed --at/--tag/--format, or two of --point/--at/--tag",
            "2:permanent: no such VM or point (the nearest are listed), a corrupt or missing object, an existing RBD image",
            "3:transient: the target or qemu-nbd did not answer in time; retry",
        },
        sortOptions = false,
        description = {
            "Restore the disks of one restore point into files or Ceph RBD images.",
            "Rebuild the disks of one restore point from any repository: the local one,",
            "a target of the engine config, a directory or s3://…. Pick the point by id,",
            "by time or by pre-deploy tag (default: the newest). Every point is logically",
            "full: the 50th incremental restores as fast as a full. Chunks are fetched in",
            "parallel and verified against their digests; zero chunks are never fetched",
            "and stay holes. Output: a sparse raw or qcow2 file, or a new Ceph RBD image,",
            "published under its final name only when complete.",
            "",
            "Examples:",
            "  # the newest point of every disk, from the local repository",
            "  tidemark restore --vm web-1 --out /srv/restore/",
            "  # as of two hours ago, from the target 'offsite' of the engine config, qcow2",
            "  tidemark restore --config /etc/tidemark/engine.yaml --from offsite \\",
            "      --vm web-1 --at '2h ago' --format qcow2 --out /srv/restore/",
            "  # one disk as it was before the deploy of commit 3f9a1c2 of app shop",
            "  tidemark restore --from /mnt/nfs/tm --vm web-1 \\",
            "      --tag pre-deploy:shop@3f9a1c2 --disk sda --out /srv/web-1-sda.qcow2",
            "  # a point by id into Ceph RBD (one image per disk: web-1-r-<disk>)",
            "  tidemark restore --from offsite --config engine.yaml --vm web-1 \\",
            "      --point 20261124T013000.123Z-3fa9c1 \\",
            "      --out 'rbd:vms/web-1-r:conf=/etc/ceph/ceph.conf:id=admin'",
            "",
            "Runbook: docs/runbooks/restore.md",
            "",
        })
final class RestoreCommand implements Callable<Integer> {

    @Option(
            names = "--from",
            defaultValue = "local",
            paramLabel = "SOURCE",
            description = "where the point is: 'local' (the engine's primary repository, default), the name of a"
                    + " target in --config, a directory, or s3://BUCKET/PREFIX?endpoint=URL&path-style=true"
                    + " (keys from TIDEMARK_S3_ACCESS_KEY / TIDEMARK_S3_SECRET_KEY or their _FILE variants)")
    String from;

    @Option(names = "--vm", required = true, paramLabel = "VM", description = "the VM whose restore point to restore")
    String vm;

    @Mixin
    PointOptions points;

    @Option(names = "--disk", paramLabel = "NAME", description = "only this disk (default: every disk of the VM)")
    String disk;

    @Option(
            names = "--out",
            required = true,
            paramLabel = "DEST",
            description = "a directory (one <disk>.raw or <disk>.qcow2 per disk); with --disk, a file; or a new"
                    + " Ceph RBD image rbd:POOL/IMAGE[:conf=FILE:id=USER] (without --disk: IMAGE-<disk> per disk)")
    String out;

    @Option(
            names = "--format",
            paramLabel = "FORMAT",
            description = "raw or qcow2 for files (default: qcow2 if --out ends in .qcow2, else raw)")
    String format;

    @Option(
            names = "--parallel",
            defaultValue = "8",
            paramLabel = "N",
            description = "chunks fetched in parallel (default: 8)")
    int parallel;

    @Option(
            names = "--memory-mib",
            defaultValue = "32",
            paramLabel = "MIB",
            description = "chunk buffers of a disk's restore at most, in MiB (default: 32); fewer chunks are"
                    + " fetched at once (and, below two per --parallel thread, with fewer threads) to stay within it")
    int memoryMib;

    @Option(
            names = "--no-image-sha256",
            description = "skip the SHA-256 of each whole image (every chunk is still verified): saves hashing"
                    + " the holes of large sparse disks")
    boolean noImageSha;

    @Mixin
    ColdWaitOption cold;

    @Option(names = "--json", description = "print a JSON summary instead of text; no progress bar")
    boolean json;

    @Mixin
    EngineOptions engine;

    private final Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException, InterruptedException {
        RestorePointSelector selector = new RestorePointSelector(clock);
        RestorePointSelector.Criterion criterion;
        String fileFormat;
        try {
            criterion = points.criterion(selector);
            fileFormat = fileFormat();
        } catch (IllegalArgumentException e) {
            throw new io.tidemark.core.InvalidInputException(e.getMessage());
        }
        try (ObjectTarget target = engine.source(engine.engineConfig(), from)) {
            Repository repo = Repository.open(target, engine.passphrases(engine.engineConfig()));
            Manifest m = selector.select(repo, vm, criterion);
            if (!(criterion instanceof RestorePointSelector.ById)) {
                ListCommand.warn(repo.listing(vm).unreadable(), from); // they were not considered
            }
            List<DiskEntry> disks = disk == null ? m.disks() : List.of(Restorer.disk(m, disk));
            java.util.Optional<io.tidemark.recovery.ColdRestore.Result> coldRestore =
                    cold.prepare(target, repo, List.of(m), ColdWaitOption.disk(disk), json ? null : System.err);
            if (!json) {
                printRestoring(m, repo);
            }
            ObjectNode summary = summary(m, criterion, repo);
            coldRestore.ifPresent(r -> summary.putObject("coldRestore")
                    .put("chunks", r.objects())
                    .put("archived", r.archived())
                    .put("requested", r.requested())
                    .put("waitedSeconds", r.waited().toSeconds()));
            long t00 = System.nanoTime();
            Restorer restorer = new Restorer(repo, parallel).withMemory((long) memoryMib << 20);
            if (noImageSha) {
                restorer = restorer.withoutImageDigest();
            }
            ArrayNode results = summary.putArray("disks");
            for (DiskEntry d : disks) {
                restoreDisk(restorer, m, d, fileFormat, results.addObject());
            }
            summary.put("seconds", (System.nanoTime() - t00) / 1e9);
            if (json) {
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(summary));
            }
        }
        return 0;
    }

    private static void printRestoring(Manifest m, Repository repo) {
        System.out.printf(
                "restoring %s of %s (captured %s%s, %s) from %s%n",
                m.id(),
                m.vm(),
                m.capturedAt(),
                RestorePointSelector.tag(m).map(t -> ", " + t).orElse(""),
                m.consistency().spelling() + "-consistent",
                repo.describe());
    }

    private static ObjectNode summary(Manifest m, RestorePointSelector.Criterion criterion, Repository repo) {
        ObjectNode summary = Json.mapper().createObjectNode();
        summary.put("vm", m.vm());
        summary.put("restorePoint", m.id());
        summary.put("capturedAt", m.capturedAt().toString());
        summary.put("consistency", m.consistency().spelling());
        RestorePointSelector.tag(m).ifPresent(t -> summary.put("tag", t));
        summary.put("selectedBy", criterion.describe());
        summary.put("from", repo.describe());
        return summary;
    }

    /** Restores one disk into its sink, records it in {@code o} and, as text, says so. */
    private void restoreDisk(Restorer restorer, Manifest m, DiskEntry d, String fileFormat, ObjectNode o)
            throws IOException {
        long t0 = System.nanoTime();
        Restorer.Result r;
        try (DiskSink sink = sink(d, fileFormat)) {
            r = restorer.restore(
                    m, d.name(), sink, new ProgressBar(System.err, d.name(), !json && System.console() != null));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        o.put("disk", d.name());
        o.put("image", r.image());
        o.put("format", r.format());
        o.put("sizeBytes", r.sizeBytes());
        o.put("bytesFetched", r.bytesFetched());
        o.put("chunksFetched", r.chunksFetched());
        if (!r.sha256().isEmpty()) {
            o.put("sha256", r.sha256());
        }
        o.put("seconds", secs);
        if (!json) {
            System.out.printf(
                    "restored %s to %s (%s, %s, %s fetched) in %.1f s%s%n",
                    d.name(),
                    r.image(),
                    r.format(),
                    Human.bytes(r.sizeBytes()),
                    Human.bytes(r.bytesFetched()),
                    secs,
                    r.sha256().isEmpty() ? "" : ", sha256 " + r.sha256());
        }
    }

    private boolean toRbd() {
        return out.startsWith("rbd:");
    }

    /** raw or qcow2 for a file destination; null for RBD. */
    private String fileFormat() {
        if (toRbd()) {
            if (format != null && !format.equals("raw")) {
                throw new IllegalArgumentException("an RBD image holds raw data: drop --format " + format);
            }
            return null;
        }
        String f = format != null
                ? format.toLowerCase(Locale.ROOT)
                : out.toLowerCase(Locale.ROOT).endsWith(".qcow2") ? "qcow2" : "raw";
        if (!f.equals("raw") && !f.equals("qcow2")) {
            throw new IllegalArgumentException("--format must be raw or qcow2, got '" + format + "'");
        }
        return f;
    }

    private DiskSink sink(DiskEntry d, String fileFormat) throws IOException {
        if (toRbd()) {
            return QemuNbdDiskSink.rbd(disk != null ? out : rbdPerDisk(out, d.name()), d.sizeBytes());
        }
        Path o = Path.of(out);
        Path file = disk != null && !Files.isDirectory(o) ? o : o.resolve(d.name() + "." + fileFormat);
        Files.createDirectories(file.toAbsolutePath().getParent());
        return fileFormat.equals("qcow2")
                ? Qcow2FileSink.create(file, d.sizeBytes())
                : RawFileSink.create(file, d.sizeBytes());
    }

    /** {@code rbd:pool/image:opts} → {@code rbd:pool/image-disk:opts}. */
    static String rbdPerDisk(String spec, String diskName) {
        int colon = spec.indexOf(':', "rbd:".length());
        return colon < 0 ? spec + "-" + diskName : spec.substring(0, colon) + "-" + diskName + spec.substring(colon);
    }
}
