package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.Durability;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.BackupWorker;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Issue 15 goal 2 on the second data set ({@link MixedImage}): a full backup, then an incremental of
 * a database-like change (one sequential run plus thousands of scattered 4 KiB writes), against
 * restic re-backing up the raw image; bytes read and stored against the bytes the guest changed.
 * Runs on its own repository, through the real worker, NBD export and file repository; the restore
 * of the incremental is checked against the changed image's SHA-256. Without restic on the PATH the
 * restic comparison is skipped and the report says so.
 */
public final class ScatteredBench {

    private final Path dir;
    private final long imageSize;
    private final double fraction;
    private final Consumer<String> phase;
    private int jobs;

    private final Durability durability;

    public ScatteredBench(Path dir, long imageSize, double fraction, Consumer<String> phase) {
        this(dir, imageSize, fraction, Durability.PER_FILE, phase);
    }

    /** With the repository's {@code durability} (ADR 25): per-file fsyncs, or syncfs at each barrier. */
    public ScatteredBench(Path dir, long imageSize, double fraction, Durability durability, Consumer<String> phase) {
        this.dir = dir;
        this.imageSize = imageSize;
        this.fraction = fraction;
        this.durability = durability;
        this.phase = phase;
    }

    /** Runs the scenario into {@code s} and returns it. */
    public ObjectNode run(ObjectNode s) throws IOException {
        Files.createDirectories(dir);
        Path raw = dir.resolve("mixed.raw");
        Path qcow2 = dir.resolve("mixed.qcow2");
        phase.accept("generating the " + imageSize / MixedImage.MIB + " MiB mixed image (text, random, zeros)");
        long[] mib = MixedImage.generate(raw, imageSize, 15);
        Tools.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-S", "0", raw.toString(), qcow2.toString());
        s.putObject("image")
                .put("bytes", imageSize)
                .put("textMiB", mib[0])
                .put("randomMiB", mib[1])
                .put("zeroMiB", mib[2]);
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir, durability), RepositoryConfig.defaults());
        s.put("durability", durability.configName());
        boolean restic = onPath("restic");
        Path resticRepo = dir.resolve("restic");
        Map<String, String> env = Map.of(
                "RESTIC_PASSWORD",
                "bench",
                "RESTIC_CACHE_DIR",
                dir.resolve("restic-cache").toString());
        try (ImageHypervisor hv = new ImageHypervisor(Clock.systemUTC());
                BackupWorker worker = Bench.worker(hv, repo, dir.resolve("w"), BackupWorker.Limits.DEFAULTS)) {
            hv.add("mixed", "sda", qcow2);
            phase.accept("tidemark: full backup of the mixed image");
            long t0 = System.nanoTime();
            worker.backup("scattered-" + ++jobs, job());
            s.put("fullSeconds", secs(System.nanoTime() - t0));
            if (restic) {
                phase.accept("restic: first backup of the mixed raw image");
                Tools.run(
                        List.of("restic", "init", "-q", "-r", resticRepo.toString(), "--repository-version", "2"),
                        env,
                        600);
                t0 = System.nanoTime();
                JsonNode first = Bench.restic(resticRepo, raw, env);
                s.put("resticFullSeconds", secs(System.nanoTime() - t0));
                s.put("resticFullBytesAdded", first.path("data_added").asLong());
            } else {
                s.put("resticSkipped", "restic is not on the PATH: install restic (deploy/install-deps.sh)");
            }

            Manifest first = incremental(s, worker, repo, repoDir, raw, qcow2, 16, restic, resticRepo, env);
            restore(s, repo, first, raw);
            // a second day: a new seeded change, backed up by the same (now compiled) worker, as a
            // running worker does; chunks changed again merge into their patches and older packs start
            // to be superseded (ADR 26), so this restore checks those paths on data not designed for them
            ObjectNode second = s.putObject("second");
            Manifest next = incremental(second, worker, repo, repoDir, raw, qcow2, 17, restic, resticRepo, env);
            restore(second, repo, next, raw);
        }
        return s;
    }

    /**
     * Applies the seeded change {@code seed} to both images, backs it up with Tidemark and (when on the
     * PATH) restic, and puts the figures into {@code s}; returns Tidemark's restore point.
     */
    private Manifest incremental(
            ObjectNode s,
            BackupWorker worker,
            Repository repo,
            Path repoDir,
            Path raw,
            Path qcow2,
            long seed,
            boolean restic,
            Path resticRepo,
            Map<String, String> env)
            throws IOException {
        MixedImage.Change change = MixedImage.change(imageSize, fraction, seed);
        phase.accept("changing the mixed image: one " + change.runBytes() / 1024 + " KiB run and "
                + change.scatteredWrites() + " scattered 4 KiB writes");
        TestImage.applyRaw(raw, change.writes());
        TestImage.applyQcow2(qcow2, change.writes(), dir.resolve("scratch"));

        phase.accept("tidemark: incremental of the scattered writes");
        long before = Tools.treeBytes(repoDir);
        settle();
        long t0 = System.nanoTime();
        Manifest inc = worker.backup("scattered-" + ++jobs, job());
        long incNanos = System.nanoTime() - t0;
        long written = Tools.treeBytes(repoDir) - before;
        DiskEntry d = inc.disk("sda").orElseThrow();
        long changed = change.changedBytes();
        s.put("changedBytes", changed);
        s.put("scatteredWrites", change.scatteredWrites());
        s.put("sequentialRunBytes", change.runBytes());
        s.put("incremental", d.fullReason().isEmpty());
        s.put("tidemarkSeconds", secs(incNanos));
        s.put("tidemarkBytesRead", d.bytesRead());
        s.put("tidemarkBytesNew", d.bytesNew());
        s.put("tidemarkBytesWritten", written);
        s.put("bytesReadVsChanged", Bench.round((double) d.bytesRead() / changed));
        s.put("bytesStoredVsChanged", Bench.round((double) written / changed));
        if (restic) {
            phase.accept("restic: re-backup of the changed mixed raw image");
            settle();
            t0 = System.nanoTime();
            JsonNode r = Bench.restic(resticRepo, raw, env);
            long resticNanos = System.nanoTime() - t0;
            s.put("resticSeconds", secs(resticNanos));
            s.put("resticBytesAdded", r.path("data_added").asLong());
            s.put("resticBytesRead", r.path("total_bytes_processed").asLong());
            s.put("timeVsRestic", Bench.round((double) incNanos / resticNanos));
        }
        return inc;
    }

    /**
     * Writes back what earlier phases left dirty in the page cache (the images, the full backup,
     * restic's repository, a restore: gigabytes), so the kernel's writeback does not run during the
     * next timed backup; the same before each contender.
     */
    private static void settle() {
        Tools.run("sync");
    }

    /** Restores {@code point} and fails the run unless it equals {@code raw} as it is now. */
    private void restore(ObjectNode s, Repository repo, Manifest point, Path raw) throws IOException {
        phase.accept("restoring the incremental and comparing it with the changed image");
        Path out = dir.resolve("restored.raw");
        long t0 = System.nanoTime();
        String sha = new Restorer(repo, 8)
                .restoreDisk(point, "sda", out, Restorer.Progress.NONE)
                .sha256();
        s.put("restoreSeconds", secs(System.nanoTime() - t0));
        String expected = Restorer.sha256(raw);
        s.put("restoreMatchesImage", sha.equals(expected));
        Files.delete(out);
        if (!sha.equals(expected)) {
            throw new PermanentException(
                    "the restored incremental (SHA-256 " + sha + ") differs from the changed image (" + expected + ")");
        }
    }

    private static SnapshotJob job() {
        return new SnapshotJob("mixed", "bench", "bench", Trigger.schedule("bench"), List.of(), Instant.now());
    }

    private static boolean onPath(String tool) {
        String path = Optional.ofNullable(System.getenv("PATH")).orElse("");
        for (String d : path.split(java.io.File.pathSeparator)) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }

    private static double secs(long nanos) {
        return Bench.round(nanos / 1e9);
    }
}
