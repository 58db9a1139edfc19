package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.repository.Repository;
import io.tidemark.workers.files.FileEntry;
import io.tidemark.workers.files.FileSystemInfo;
import io.tidemark.workers.files.PointFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code tidemark files ls|get}: single files out of a restore point, without restoring its disk. */
@Command(
        name = "files",
        mixinStandardHelpOptions = true,
        description = {
            "List and copy files out of a restore point in any location, without restoring its disk.",
            "The disk is served read-only over NBD straight from the repository to a libguestfs",
            "appliance, which reads the partition table (MBR, GPT), LVM and the file system (ext2/3/4, xfs,",
            "vfat, ntfs …); only the chunks it reads are fetched. Starting the appliance takes seconds with KVM",
            "and about a minute under TCG. Runbook: docs/runbooks/files.md",
        },
        subcommands = {FilesCommand.Ls.class, FilesCommand.Get.class})
final class FilesCommand {

    /** Options both subcommands share. */
    static final class Source {
        @Option(
                names = "--from",
                defaultValue = "local",
                paramLabel = "SOURCE",
                description = "where the point is: 'local' (the engine's primary repository, default), the name of"
                        + " a target in --config, a directory, or s3://BUCKET/PREFIX?endpoint=URL")
        String from;

        @Option(
                names = "--disk",
                paramLabel = "NAME",
                description = "the disk to read (default: the point's only disk)")
        String disk;

        @Option(names = "--json", description = "print a JSON document instead of text")
        boolean json;

        @Option(
                names = "--work-dir",
                paramLabel = "DIR",
                description = "for the appliance's log and temporary archives (default: a new temporary directory)")
        Path workDir;

        @Option(
                names = "--appliance-accel",
                defaultValue = "auto",
                paramLabel = "auto|tcg",
                description = "auto (default): libguestfs uses KVM when it works, else TCG; tcg: never KVM (for hosts"
                        + " where /dev/kvm exists but hangs)")
        String accel;

        @Mixin
        EngineOptions engine;

        @Mixin
        ColdWaitOption cold;

        /** Opens the point's disk, runs {@code body} and closes everything; prints what was fetched. */
        <T> T withFiles(String point, Body<T> body) throws IOException {
            PointFiles.Options options = options();
            EngineConfig c = engine.engineConfig();
            Path work = workDir != null ? workDir : Files.createTempDirectory("tidemark-files");
            long t0 = System.nanoTime();
            try (ObjectTarget target = open(c)) {
                Repository repo = Repository.open(target, engine.passphrases(c));
                Manifest m = find(repo, point);
                String d = disk != null ? disk : onlyDisk(m);
                cold.prepare(target, repo, List.of(m), ColdWaitOption.disk(d), json ? null : System.err);
                try (PointFiles files = PointFiles.open(repo, m, d, work, options)) {
                    ObjectNode doc = Json.mapper().createObjectNode();
                    doc.put("vm", m.vm());
                    doc.put("restorePoint", m.id());
                    doc.put("disk", d);
                    T result = body.run(files, doc);
                    doc.put("diskSizeBytes", files.diskSize());
                    doc.put("bytesFetched", files.bytesFetched());
                    doc.put("chunksFetched", files.chunksFetched());
                    doc.put("seconds", (System.nanoTime() - t0) / 1e9);
                    if (json) {
                        System.out.println(
                                Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(doc));
                    } else {
                        System.err.printf(
                                "fetched %s (%d chunks) of the %s disk in %.1f s%n",
                                Human.bytes(files.bytesFetched()),
                                files.chunksFetched(),
                                Human.bytes(files.diskSize()),
                                (System.nanoTime() - t0) / 1e9);
                    }
                    return result;
                }
            } finally {
                if (workDir == null) {
                    deleteTree(work);
                }
            }
        }

        PointFiles.Options options() {
            if (!accel.equals("auto") && !accel.equals("tcg")) {
                throw new io.tidemark.core.InvalidInputException(
                        "--appliance-accel must be auto or tcg, got '" + accel + "'");
            }
            return PointFiles.Options.defaults().withForceTcg(accel.equals("tcg"));
        }

        ObjectTarget open(EngineConfig c) {
            return engine.source(c, from);
        }

        Manifest find(Repository repo, String point) {
            for (String vm : repo.vms()) {
                Optional<Manifest> m = repo.manifest(vm, point);
                if (m.isPresent()) {
                    return m.get();
                }
            }
            throw new PermanentException("no restore point '" + point + "' at " + from + " (" + repo.describe()
                    + "); list the points with `tidemark list --from " + from + "`");
        }

        static String onlyDisk(Manifest m) {
            if (m.disks().size() != 1) {
                throw new PermanentException("restore point " + m.id() + " of " + m.vm() + " has "
                        + m.disks().size() + " disks "
                        + m.disks().stream().map(DiskEntry::name).toList()
                        + "; choose one with --disk");
            }
            return m.disks().get(0).name();
        }
    }

    interface Body<T> {
        T run(PointFiles files, ObjectNode doc) throws IOException;
    }

    @Command(
            name = "ls",
            mixinStandardHelpOptions = true,
            description = {
                "List the file systems of a point's disk, or a directory (or one file) in one of them.",
                "",
                "PATH is FS:/path (FS as listed without PATH: sda1, vg0/root …) or /path when the disk holds",
                "one readable file system. A path that does not exist names the nearest existing directory.",
                "",
                "Examples:",
                "  tidemark files ls 20261207T012233.123Z-3f9a",
                "  tidemark files ls --from offsite --config engine.yaml 20261207T012233.123Z-3f9a sda1:/etc",
            })
    static final class Ls implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "POINT", description = "the restore point id (as `tidemark list` shows)")
        String point;

        @Parameters(index = "1", arity = "0..1", paramLabel = "PATH", description = "FS:/path or /path")
        String path;

        @Mixin
        Source source;

        @Override
        public Integer call() throws IOException {
            return source.withFiles(point, (files, doc) -> {
                if (path == null) {
                    List<FileSystemInfo> all = files.fileSystems();
                    ArrayNode a = doc.putArray("fileSystems");
                    all.forEach(f -> a.addObject()
                            .put("name", f.name())
                            .put("device", f.device())
                            .put("type", f.type())
                            .put("readable", f.readable()));
                    if (!source.json) {
                        System.out.printf("%-20s %-10s %s%n", "FILE SYSTEM", "TYPE", "READABLE");
                        all.forEach(f ->
                                System.out.printf("%-20s %-10s %s%n", f.name(), f.type(), f.readable() ? "yes" : "no"));
                    }
                    return 0;
                }
                List<FileEntry> entries = files.list(path);
                doc.put("path", path);
                ArrayNode a = doc.putArray("entries");
                entries.forEach(e -> json(e, a.addObject()));
                if (!source.json) {
                    for (FileEntry e : entries) {
                        System.out.printf(
                                "%s %6d %6d %12d %s %s%s%n",
                                e.modeString(),
                                e.uid(),
                                e.gid(),
                                e.size(),
                                e.mtime(),
                                e.name(),
                                e.target().map(t -> " -> " + t).orElse(""));
                    }
                }
                return 0;
            });
        }
    }

    @Command(
            name = "get",
            mixinStandardHelpOptions = true,
            description = {
                "Copy files, directories (recursively) and symlinks out of a restore point into --out.",
                "Mode, mtime, symlink targets and, when run as root, owner and group are kept. Progress goes to",
                "stderr.",
                "",
                "Example:",
                "  tidemark files get 20261207T012233.123Z-3f9a sda1:/etc/nginx sda1:/var/www/index.html --out /tmp/r",
            })
    static final class Get implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "POINT", description = "the restore point id (as `tidemark list` shows)")
        String point;

        @Parameters(index = "1..*", arity = "1..*", paramLabel = "PATH", description = "FS:/path or /path")
        List<String> paths;

        @Option(names = "--out", required = true, paramLabel = "DIR", description = "directory to copy into")
        Path out;

        @Mixin
        Source source;

        @Override
        public Integer call() throws IOException {
            return source.withFiles(point, (files, doc) -> {
                List<PointFiles.Copied> copied = files.get(
                        paths,
                        out,
                        (p, local, bytes, took) -> System.err.printf(
                                "got %s -> %s (%s) in %.1f s, %s fetched so far%n",
                                p,
                                local,
                                Human.bytes(bytes),
                                took.toMillis() / 1e3,
                                Human.bytes(files.bytesFetched())));
                ArrayNode a = doc.putArray("files");
                copied.forEach(c -> a.addObject()
                        .put("path", c.path())
                        .put("local", c.local().toString())
                        .put("type", c.type())
                        .put("bytes", c.bytes()));
                if (!source.json) {
                    System.out.printf("copied %d item(s) into %s%n", copied.size(), out);
                }
                return 0;
            });
        }
    }

    static void json(FileEntry e, ObjectNode o) {
        o.put("name", e.name());
        o.put("path", e.path());
        o.put("type", e.type());
        o.put("mode", String.format("%04o", e.mode()));
        o.put("uid", e.uid());
        o.put("gid", e.gid());
        o.put("size", e.size());
        o.put("mtime", e.mtime().toString());
        e.target().ifPresent(t -> o.put("target", t));
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
