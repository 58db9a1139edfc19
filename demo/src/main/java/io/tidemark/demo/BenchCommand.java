package io.tidemark.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.files.FileTrees;
import io.tidemark.demo.bench.Bench;
import io.tidemark.format.Json;
import io.tidemark.workers.BackupWorker;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        subcommands = {
            SoakCommand.class,
            TopologyCommand.class,
            FiringLagCommand.class,
            FilesBenchCommand.class,
            DrBenchCommand.class,
            ScatteredBenchCommand.class
        },
        description = {
            "Measure the backup pipeline against nbdcopy and restic on the same data.",
            "Baselines run in the same process on the same data:",
            "  1. full backup of a test image vs nbdcopy reading the same NBD export to null:",
            "  2. a 1 %%-dirty incremental vs restic re-backing up the raw image: time, bytes read",
            "  3. a zero-change incremental of a large sparse disk: time, bytes written",
            "  4. N clones of one base image backed up as N VMs into one repository: dedup ratio",
            "  5. guest impact: 4 KiB writes through a running VM's disk (HMP qemu-io, TCG) with and",
            "     without a full backup running: p50/p99 ratios",
            "  6. on a second image (text, random, zeros), an incremental of one sequential run plus",
            "     scattered 4 KiB writes vs restic: bytes read and stored per byte changed, time",
            "  7. guest-os (not run by default; --scenarios guest-os): the guest impact measured inside",
            "     a Linux guest (the tiny test guest): O_DIRECT|O_DSYNC 4 KiB writes every 5 ms with",
            "     no backup and during a full (default bounded and classic capture): p50/p99 ratios;",
            "     needs gcc + libc6-dev and, once, the Debian mirror (deploy/guest/build-tiny-guest.sh)",
            "The full also reports its CPU per GB of non-zero data against zstd -1 + sha256sum on the",
            "same bytes, its peak RSS and the load average. It profiles each stage (NBD read, zero",
            "check, SHA-256, zstd, chunk writes) alone, in MiB/s and CPU-seconds per GB.",
            "The full is also compared with borg's first backup of the raw image (zstd,1).",
            "A baseline that is not installed is named as skipped in the output.",
            "Needs qemu-img, qemu-nbd, qemu-io, qemu-system-x86_64, nbdcopy, zstd and restic",
            "(deploy/install-deps.sh) and",
            "about 4x --image-size plus 2x --clone-size of free space under --dir. Ratios, not",
            "absolute figures, carry over to other machines.",
            "",
            "Example, a smoke run in seconds:",
            "  tidemark bench --image-size 64MiB --large-size 1GiB --clones 3 --clone-size 16MiB",
            "The defaults give the figures of docs/benchmarks.md.",
            "`tidemark bench soak` is the day-two soak (restarts, kills and outages; see its --help).",
            "`tidemark bench topology` is a fleet of processes under SIGKILL (see its --help).",
            "`tidemark bench dr` times a DR failover from the command's start to the guests' answer.",
        })
final class BenchCommand implements Callable<Integer> {

    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([KMGT]?)(i?B)?", Pattern.CASE_INSENSITIVE);

    @Option(names = "--image-size", defaultValue = "4GiB", description = "test image size (default ${DEFAULT-VALUE})")
    String imageSize;

    @Option(
            names = "--large-size",
            defaultValue = "20GiB",
            description = "sparse disk of the zero-change incremental (default ${DEFAULT-VALUE})")
    String largeSize;

    @Option(
            names = "--clones",
            defaultValue = "10",
            description = "clones for the dedup figure (default ${DEFAULT-VALUE})")
    int clones;

    @Option(
            names = "--clone-size",
            defaultValue = "1GiB",
            description = "size of each clone (default ${DEFAULT-VALUE})")
    String cloneSize;

    @Option(
            names = "--dirty",
            defaultValue = "1",
            description = "percent of a disk changed between backups (default ${DEFAULT-VALUE})")
    double dirtyPercent;

    @Option(
            names = "--scenarios",
            split = ",",
            defaultValue = "full,incremental,zero,clones,guest,scattered",
            description = "scenarios to run: full, incremental (runs full first), zero, clones, guest, scattered,"
                    + " guest-os (default ${DEFAULT-VALUE})")
    java.util.List<String> scenarios;

    @Option(
            names = "--guest-size",
            defaultValue = "256MiB",
            description = "disk of the running VM of the guest-impact scenarios (guest, guest-os), at most 2GiB"
                    + " and --image-size; the VM fixture of guest models the disk in the heap"
                    + " (default ${DEFAULT-VALUE})")
    String guestSize;

    @Option(
            names = "--dir",
            description = "work directory (default: a new one under the system temporary directory); removed"
                    + " afterwards unless --keep")
    Path dir;

    @Option(names = "--keep", description = "keep the images and repositories")
    boolean keep;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws IOException {
        Path work = dir != null ? dir : Files.createTempDirectory("tm-bench-");
        boolean tty = System.console() != null && !json;
        PrintStream err = System.err;
        int[] step = {0};
        Bench.Options options = new Bench.Options(
                work,
                size(imageSize),
                size(largeSize),
                clones,
                size(cloneSize),
                dirtyPercent / 100,
                java.util.Set.copyOf(scenarios),
                size(guestSize));
        ObjectNode report;
        try {
            report = new Bench(options, p -> {
                        step[0]++;
                        if (tty) {
                            err.printf("[%2d] %s%n", step[0], p);
                        }
                    })
                    .run();
        } finally {
            if (!keep) {
                FileTrees.delete(work);
            }
        }
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(report));
        } else {
            print(report, System.out);
        }
        return 0;
    }

    private static void print(ObjectNode r, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "load average at start %s, at end %s%n",
                r.path("loadAverageAtStart").asText(),
                r.path("loadAverageAtEnd").asText());
        JsonNode f = r.path("full");
        if (!f.isMissingNode()) {
            printFull(f, out);
        }
        JsonNode i = r.path("incremental");
        if (!i.isMissingNode()) {
            printIncremental(i, out);
        }
        JsonNode z = r.path("zeroChange");
        if (!z.isMissingNode()) {
            printZero(z, out);
        }
        JsonNode c = r.path("clones");
        if (!c.isMissingNode()) {
            printClones(c, out);
        }
        printScattered(r.path("scatteredIncremental"), out);
        printGuest(r.path("guest"), out);
        printGuestOs(r.path("guestOs"), out);
    }

    private static void printFull(JsonNode f, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "full backup CPU: %.2f CPU-s per GB of non-zero data; zstd -1 + sha256sum %.2f  -> %.2fx;"
                        + " process RSS peak %d MiB (heap max %d MiB); %s%n",
                f.path("tidemarkCpuSecondsPerGB").asDouble(),
                f.path("zstdSha256CpuSecondsPerGB").asDouble(),
                f.path("cpuVsZstdSha256").asDouble(),
                f.path("processRssPeakMiB").asLong(),
                f.path("maxHeapMiB").asLong(),
                f.path("borg").asText());
        out.printf(
                Locale.ROOT,
                "full backup of %s:    tidemark %.2f s (%.0f MiB/s)  nbdcopy %.2f s (%.0f MiB/s)"
                        + "  -> %.2fx of the NBD read ceiling%n",
                Human.bytes(f.path("bytes").asLong()),
                f.path("tidemarkSeconds").asDouble(),
                f.path("tidemarkMiBps").asDouble(),
                f.path("nbdcopySeconds").asDouble(),
                f.path("nbdcopyMiBps").asDouble(),
                f.path("throughputVsNbdcopy").asDouble());
        if (f.has("borgSeconds")) {
            out.printf(
                    Locale.ROOT,
                    "full backup vs borg:  tidemark %.2f s  %s %.2f s (zstd,1, new repository)  -> %.2fx borg's speed%n",
                    f.path("tidemarkSeconds").asDouble(),
                    f.path("borg").asText(),
                    f.path("borgSeconds").asDouble(),
                    f.path("throughputVsBorg").asDouble());
        }
    }

    private static void printIncremental(JsonNode i, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "incremental (%s changed): tidemark %.2f s, read %s  restic %.2f s, read %s"
                        + "  -> time %.3fx, bytes read %.3fx of restic%n",
                Human.bytes(i.path("changedBytes").asLong()),
                i.path("tidemarkSeconds").asDouble(),
                Human.bytes(i.path("tidemarkBytesRead").asLong()),
                i.path("resticSeconds").asDouble(),
                Human.bytes(i.path("resticBytesRead").asLong()),
                i.path("timeVsRestic").asDouble(),
                i.path("bytesReadVsRestic").asDouble());
    }

    private static void printZero(JsonNode z, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "zero-change incremental of %s: %.2f s, %s written, %s read  (full: %.2f s, %s written)"
                        + "  -> %.3fx the full's time%n",
                Human.bytes(z.path("diskBytes").asLong()),
                z.path("incrementalSeconds").asDouble(),
                Human.bytes(z.path("incrementalBytesWritten").asLong()),
                Human.bytes(z.path("incrementalBytesRead").asLong()),
                z.path("fullSeconds").asDouble(),
                Human.bytes(z.path("fullBytesWritten").asLong()),
                z.path("timeVsFull").asDouble());
    }

    private static void printClones(JsonNode c, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "%d clones of %s (%s changed each): read %s, stored %s  -> dedup %.2fx, cost %.2f images%n",
                c.path("clones").asInt(),
                Human.bytes(c.path("cloneBytes").asLong()),
                Human.bytes(c.path("changedBytesPerClone").asLong()),
                Human.bytes(c.path("bytesRead").asLong()),
                Human.bytes(c.path("repositoryBytes").asLong()),
                c.path("dedupRatio").asDouble(),
                c.path("costInImages").asDouble());
    }

    static void printScattered(JsonNode s, PrintStream out) {
        if (s.isMissingNode()) {
            return;
        }
        out.printf(
                Locale.ROOT,
                "scattered incremental (%d x 4 KiB + a %s run = %s changed): tidemark %.2f s, read %s (%.2fx),"
                        + " stored %s (%.2fx)  restic %.2f s  -> time %.3fx of restic%n",
                s.path("scatteredWrites").asInt(),
                Human.bytes(s.path("sequentialRunBytes").asLong()),
                Human.bytes(s.path("changedBytes").asLong()),
                s.path("tidemarkSeconds").asDouble(),
                Human.bytes(s.path("tidemarkBytesRead").asLong()),
                s.path("bytesReadVsChanged").asDouble(),
                Human.bytes(s.path("tidemarkBytesWritten").asLong()),
                s.path("bytesStoredVsChanged").asDouble(),
                s.path("resticSeconds").asDouble(),
                s.path("timeVsRestic").asDouble());
        if (s.has("resticSkipped")) {
            out.println(
                    "  restic comparison skipped: " + s.path("resticSkipped").asText());
        }
        JsonNode next = s.path("second");
        if (!next.isMissingNode()) {
            out.printf(
                    Locale.ROOT,
                    "  a second day's incremental (%s changed; the worker warm, as a running one): tidemark %.2f s,"
                            + " read %.2fx, stored %.2fx  restic %.2f s  -> time %.3fx of restic%n",
                    Human.bytes(next.path("changedBytes").asLong()),
                    next.path("tidemarkSeconds").asDouble(),
                    next.path("bytesReadVsChanged").asDouble(),
                    next.path("bytesStoredVsChanged").asDouble(),
                    next.path("resticSeconds").asDouble(),
                    next.path("timeVsRestic").asDouble());
        }
    }

    private static void printGuest(JsonNode g, PrintStream out) {
        if (g.isMissingNode()) {
            return;
        }
        out.printf(
                Locale.ROOT,
                "guest 4 KiB writes (%s): no backup p50 %.3f ms p99 %.3f ms; during a full backup p50 %.3f ms"
                        + " p99 %.3f ms  -> p50 %.2fx, p99 %.2fx%n",
                g.path("issuedFrom").asText(),
                g.path("noBackup").path("p50Ms").asDouble(),
                g.path("noBackup").path("p99Ms").asDouble(),
                g.path("duringBackup").path("p50Ms").asDouble(),
                g.path("duringBackup").path("p99Ms").asDouble(),
                g.path("p50VsNoBackup").asDouble(),
                g.path("p99VsNoBackup").asDouble());
        out.printf(
                Locale.ROOT,
                "  bounded capture, backupNice %d: p50 %.3f ms p99 %.3f ms  -> p50 %.2fx, p99 %.2fx; backupNice 0:"
                        + " p50 %.3f ms p99 %.3f ms  -> p50 %.2fx, p99 %.2fx%n",
                BackupWorker.DEFAULT_BACKUP_NICE,
                g.path("boundedPooled").path("p50Ms").asDouble(),
                g.path("boundedPooled").path("p99Ms").asDouble(),
                g.path("boundedP50VsNoBackup").asDouble(),
                g.path("boundedP99VsNoBackup").asDouble(),
                g.path("boundedNiceZeroPooled").path("p50Ms").asDouble(),
                g.path("boundedNiceZeroPooled").path("p99Ms").asDouble(),
                g.path("boundedNiceZeroP50VsNoBackup").asDouble(),
                g.path("boundedNiceZeroP99VsNoBackup").asDouble());
        out.printf(
                Locale.ROOT,
                "  during incrementals of a 1 %% change: p50 %.3f ms p99 %.3f ms (%d writes)  -> p50 %.2fx, p99 %.2fx%n",
                g.path("duringIncremental").path("p50Ms").asDouble(),
                g.path("duringIncremental").path("p99Ms").asDouble(),
                g.path("duringIncremental").path("writes").asInt(),
                g.path("incrementalP50VsNoBackup").asDouble(),
                g.path("incrementalP99VsNoBackup").asDouble());
        out.printf(
                Locale.ROOT,
                "  with backupMemory 1 MiB (2 chunks in flight): p50 %.3f ms p99 %.3f ms  -> p50 %.2fx, p99 %.2fx%n",
                g.path("duringBackupSmallWindow").path("p50Ms").asDouble(),
                g.path("duringBackupSmallWindow").path("p99Ms").asDouble(),
                g.path("smallWindowP50VsNoBackup").asDouble(),
                g.path("smallWindowP99VsNoBackup").asDouble());
    }

    private static void printGuestOs(JsonNode g, PrintStream out) {
        if (g.isMissingNode()) {
            return;
        }
        out.printf(
                Locale.ROOT,
                "guest 4 KiB O_DIRECT|O_DSYNC writes measured in the guest (%s, every %d us, load at start %s):"
                        + " no backup p50 %.3f ms p99 %.3f ms (%d writes)%n",
                g.path("accelerator").asText(),
                g.path("paceMicros").asLong(),
                g.path("loadAverageAtStart").asText(),
                g.path("noBackup").path("p50Ms").asDouble(),
                g.path("noBackup").path("p99Ms").asDouble(),
                g.path("noBackup").path("writes").asInt());
        printGuestOsPhase(
                out,
                "default capture (bounded copy-before-write, backupNice "
                        + g.path("duringBackup").path("backupNice").asInt() + ")",
                g.path("duringBackup"),
                g.path("p50VsNoBackup"),
                g.path("p99VsNoBackup"));
        printGuestOsPhase(
                out,
                "classic capture",
                g.path("duringBackupClassic"),
                g.path("classicP50VsNoBackup"),
                g.path("classicP99VsNoBackup"));
        printGuestOsPhase(
                out,
                "bounded capture, backupNice 0",
                g.path("duringBackupNiceZero"),
                g.path("niceZeroP50VsNoBackup"),
                g.path("niceZeroP99VsNoBackup"));
    }

    private static void printGuestOsPhase(PrintStream out, String what, JsonNode p, JsonNode p50, JsonNode p99) {
        out.printf(
                Locale.ROOT,
                "  during a full, %s: p50 %.3f ms p99 %.3f ms max %.3f ms (%d writes, backup %.2f s)"
                        + "  -> p50 %.2fx, p99 %.2fx%n",
                what,
                p.path("p50Ms").asDouble(),
                p.path("p99Ms").asDouble(),
                p.path("maxMs").asDouble(),
                p.path("writes").asInt(),
                p.path("backupSeconds").asDouble(),
                p50.asDouble(),
                p99.asDouble());
    }

    /** {@code 4GiB}, {@code 64M}, {@code 1048576}: binary units. */
    static long size(String text) {
        Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException(
                    "'" + text + "' is not a size; write for example 64MiB, 4GiB or 1048576");
        }
        int shift =
                switch (m.group(2).toUpperCase(Locale.ROOT)) {
                    case "K" -> 10;
                    case "M" -> 20;
                    case "G" -> 30;
                    case "T" -> 40;
                    default -> 0;
                };
        return Long.parseLong(m.group(1)) << shift;
    }
}
