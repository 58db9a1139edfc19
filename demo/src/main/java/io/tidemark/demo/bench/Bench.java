package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The benchmark scenarios. Each compares Tidemark with a baseline measured in the same run on the
 * same data:
 *
 * <ol>
 *   <li>full backup of the test image vs {@code nbdcopy} reading the same kind of export to {@code
 *       null:} (the NBD read ceiling);
 *   <li>a 1 %-dirty incremental vs restic re-backing up the raw image into a local repository;
 *   <li>a zero-change incremental of a large sparse disk vs its own full backup;
 *   <li>N clones of one base image (1 % of each changed) backed up as N VMs into one repository;
 *   <li>the guest impact of a full backup, from outside the guest ({@link GuestLatency}) and, not by
 *       default, measured inside a Linux guest ({@link GuestOsLatency}).
 * </ol>
 *
 * All work happens under {@code dir}, which the caller removes.
 */
public final class Bench {

    private static final int MIB = 1 << 20;

    /**
     * @param imageSize the test image (scenarios 1 and 2)
     * @param largeSize the sparse disk of scenario 3 (holding the test image's data at its start)
     * @param clones how many clones (scenario 4)
     * @param cloneSize each clone's size
     * @param dirtyFraction the share of a disk changed between backups
     */
    public record Options(
            Path dir,
            long imageSize,
            long largeSize,
            int clones,
            long cloneSize,
            double dirtyFraction,
            Set<String> scenarios,
            long guestSize) {

        /** The scenarios, by the names {@code --scenarios} takes. */
        public static final List<String> SCENARIOS =
                List.of("full", "incremental", "zero", "clones", "guest", "scattered", "guest-os");

        /**
         * The scenarios a run without {@code --scenarios} runs: all but {@code guest-os}. That one
         * is quick (about 30 s under TCG, most of it the boot) but boots the tiny test guest, which
         * is built on first use with gcc and packages from the Debian mirror: a default run needs
         * neither; ask for it by name.
         */
        public static final List<String> DEFAULT_SCENARIOS =
                List.of("full", "incremental", "zero", "clones", "guest", "scattered");

        /** The default scenarios, with a 256 MiB guest disk. */
        public Options(Path dir, long imageSize, long largeSize, int clones, long cloneSize, double dirtyFraction) {
            this(
                    dir,
                    imageSize,
                    largeSize,
                    clones,
                    cloneSize,
                    dirtyFraction,
                    Set.copyOf(DEFAULT_SCENARIOS),
                    256L << 20);
        }

        public Options {
            scenarios = Set.copyOf(scenarios);
            for (String sc : scenarios) {
                if (!SCENARIOS.contains(sc)) {
                    throw new PermanentException(
                            "unknown scenario '" + sc + "'; known: " + String.join(", ", SCENARIOS));
                }
            }
            if (largeSize < imageSize) {
                throw new PermanentException(
                        "--large-size (" + largeSize + ") must be at least --image-size (" + imageSize + ")");
            }
            if (clones < 1) {
                throw new PermanentException("--clones must be at least 1, not " + clones);
            }
        }
    }

    private final Options o;
    private final Consumer<String> phase;
    private final ObjectNode report = Json.mapper().createObjectNode();
    private int jobs;

    /** @param phase told the name of each step as it starts (for a progress line) */
    public Bench(Options options, Consumer<String> phase) {
        this.o = options;
        this.phase = phase;
    }

    /** Runs every scenario; returns the figures (see docs/benchmarks.md for their meaning). */
    public ObjectNode run() throws IOException {
        Files.createDirectories(o.dir());
        report.put("cores", Runtime.getRuntime().availableProcessors());
        report.put("loadAverageAtStart", loadAverage());
        Path raw = o.dir().resolve("image.raw");
        Path qcow2 = o.dir().resolve("image.qcow2");
        if (o.scenarios().contains("full")
                || o.scenarios().contains("incremental")
                || o.scenarios().contains("zero")) {
            phase.accept("generating the " + mib(o.imageSize()) + " MiB test image");
            long randomMiB = TestImage.generate(raw, o.imageSize());
            Tools.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-S", "0", raw.toString(), qcow2.toString());
            report.putObject("image").put("bytes", o.imageSize()).put("randomMiB", randomMiB);
        }
        try (ImageHypervisor hv = new ImageHypervisor(Clock.systemUTC());
                BackupWorker worker = worker(hv, o.dir().resolve("repo"))) {
            if (Files.exists(qcow2)) {
                hv.add("image", "sda", qcow2);
            }
            if (o.scenarios().contains("full") || o.scenarios().contains("incremental")) {
                fullVsNbdcopy(worker, hv, qcow2);
            }
            if (o.scenarios().contains("incremental")) {
                incrementalVsRestic(worker, raw, qcow2);
            }
        }
        if (o.scenarios().contains("zero")) {
            zeroChange(raw);
        }
        if (o.scenarios().contains("clones")) {
            clones();
        }
        if (o.scenarios().contains("scattered")) {
            new ScatteredBench(o.dir().resolve("scattered"), o.imageSize(), o.dirtyFraction(), phase)
                    .run(report.putObject("scatteredIncremental"));
        }
        if (o.scenarios().contains("guest")) {
            phase.accept("guest impact: write latency with and without a backup");
            GuestLatency.measure(
                    o.dir().resolve("guest"),
                    guestSize(),
                    200,
                    phase,
                    report.putObject("guest").put("loadAverageAtStart", loadAverage()));
        }
        if (o.scenarios().contains("guest-os")) {
            phase.accept("guest impact measured in the guest: synchronous write latency with and without a backup");
            GuestOsLatency.measure(
                    o.dir().resolve("guest-os"),
                    guestSize(),
                    400,
                    phase,
                    report.putObject("guestOs").put("loadAverageAtStart", loadAverage()));
        }
        report.put("loadAverageAtEnd", loadAverage());
        return report;
    }

    /** The disk of the guest scenarios: {@code --guest-size}, at most {@code --image-size} and 2 GiB. */
    private long guestSize() {
        return Math.min(Math.min(o.guestSize(), o.imageSize()), 2L << 30);
    }

    /** The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them (the machine is shared). */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    private void fullVsNbdcopy(BackupWorker worker, ImageHypervisor hv, Path qcow2) {
        phase.accept("nbdcopy: reading the export to null:");
        Path socket = o.dir().resolve("nbdcopy.sock");
        Process server = startNbd(qcow2, socket);
        long nbdNanos;
        try {
            long t0 = System.nanoTime();
            Tools.run("nbdcopy", "nbd+unix:///sda?socket=" + socket, "null:");
            nbdNanos = System.nanoTime() - t0;
            phase.accept("profiling the stages of the chunk pipeline");
            Stages.profile(
                    o.dir().resolve("image.raw"),
                    socket,
                    "sda",
                    512L * MIB,
                    o.dir().resolve("stages"),
                    report.putObject("stages"));
        } catch (IOException e) {
            throw new PermanentException("profiling the stages failed: " + e.getMessage(), e);
        } finally {
            server.destroy();
            waitFor(server);
        }
        phase.accept("tidemark: full backup");
        long repoBefore = repoBytes();
        String loadBefore = loadAverage();
        Timed<Manifest> full;
        long rssPeak;
        long[] ticks0 = cpuTicks();
        ObjectNode s = report.putObject("full");
        try (RssSampler rss = new RssSampler();
                ThreadCpu threads = new ThreadCpu()) {
            full = time(() -> worker.backup("bench-" + ++jobs, job("image")));
            rssPeak = rss.peak();
            threads.report(s.putObject("cpuSecondsByThread"));
        }
        long[] ticks1 = cpuTicks();
        s.put("tidemarkUserCpuSeconds", (ticks1[0] - ticks0[0]) / 100.0);
        s.put("tidemarkSystemCpuSeconds", (ticks1[1] - ticks0[1]) / 100.0);
        s.put("loadAverageBefore", loadBefore);
        s.put("loadAverageAfter", loadAverage());
        s.put("processRssPeakMiB", rssPeak >> 20);
        s.put("maxHeapMiB", Runtime.getRuntime().maxMemory() >> 20);
        s.put("bytes", o.imageSize());
        s.put("tidemarkSeconds", secs(full.nanos()));
        s.put("tidemarkMiBps", mibps(o.imageSize(), full.nanos()));
        s.put("nbdcopySeconds", secs(nbdNanos));
        s.put("nbdcopyMiBps", mibps(o.imageSize(), nbdNanos));
        s.put("throughputVsNbdcopy", round((double) nbdNanos / full.nanos()));
        s.put("bytesRead", full.value().bytesRead());
        s.put("bytesNew", full.value().bytesNew());
        s.put("bytesWritten", repoBytes() - repoBefore);
        s.put("tidemarkCpuSeconds", secs(full.cpuNanos()));
        warmFull(hv, s, nbdNanos);
        // the profile's scratch files go only now: deleted just before the full, their inodes would
        // make the full's file creations slower on a journal-less ext4 (the kernel skips inodes freed
        // in the last minutes one by one), a cost of the bench, not of the backup
        Tools.deleteTree(o.dir().resolve("stages"));
        cpuVsTools(s, full.cpuNanos());
        fullVsBorg(s, full.nanos());
        if (s.has("borgSeconds") && s.has("warmTidemarkSeconds")) {
            s.put(
                    "warmThroughputVsBorg",
                    round(s.get("borgSeconds").asDouble()
                            / s.get("warmTidemarkSeconds").asDouble()));
        }
    }

    /**
     * A second full of the same image in the same process, into a new repository: the steady state
     * of a long-running worker, whose code is compiled by then (the first full of a fresh JVM also
     * pays the JIT compiler's CPU and runs its first chunks interpreted; {@code cpuSecondsByThread}
     * of the first full shows the compiler threads).
     */
    private void warmFull(ImageHypervisor hv, ObjectNode s, long nbdNanos) {
        phase.accept("tidemark: a second full (warm JIT) into a new repository");
        Path repo = o.dir().resolve("repo-warm");
        long[] ticks0 = cpuTicks();
        Timed<Manifest> warm;
        ObjectNode threads = s.putObject("warmCpuSecondsByThread");
        try (BackupWorker w = worker(hv, repo);
                ThreadCpu cpu = new ThreadCpu()) {
            warm = time(() -> w.backup("bench-" + ++jobs, job("image")));
            cpu.report(threads);
        }
        long[] ticks1 = cpuTicks();
        s.put("warmTidemarkSeconds", secs(warm.nanos()));
        s.put("warmThroughputVsNbdcopy", round((double) nbdNanos / warm.nanos()));
        s.put("warmTidemarkCpuSeconds", secs(warm.cpuNanos()));
        s.put("warmTidemarkUserCpuSeconds", (ticks1[0] - ticks0[0]) / 100.0);
        s.put("warmTidemarkSystemCpuSeconds", (ticks1[1] - ticks0[1]) / 100.0);
        s.put("warmBytesNew", warm.value().bytesNew());
    }

    /**
     * borg's first backup of the same raw image into a new local repository (no encryption, zstd
     * level 1 as Tidemark compresses, borg's default chunker): the second baseline for a
     * full. A machine without borg says so in {@code borg} and skips only this comparison.
     */
    private void fullVsBorg(ObjectNode s, long tidemarkNanos) {
        if (!Tools.onPath("borg")) {
            s.put("borg", "skipped: borg is not installed (Debian package borgbackup); no borg comparison in this run");
            return;
        }
        phase.accept("borg: first backup of the raw image");
        Path repo = o.dir().resolve("borg");
        Map<String, String> env = Map.of(
                "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK",
                "yes",
                "BORG_BASE_DIR",
                o.dir().resolve("borg-home").toString());
        Tools.run(List.of("borg", "init", "--encryption=none", repo.toString()), env, 600);
        Path image = o.dir().resolve("image.raw");
        Timed<String> borg = time(() -> Tools.run(
                List.of("borg", "create", "--compression", "zstd,1", repo + "::full", image.toString()), env, 7200));
        s.put("borg", Tools.run(List.of("borg", "--version"), env, 60).trim());
        s.put("borgSeconds", secs(borg.nanos()));
        s.put("borgBytesWritten", Tools.treeBytes(repo));
        s.put("throughputVsBorg", round((double) borg.nanos() / tidemarkNanos));
        Tools.deleteTree(repo);
    }

    /**
     * What {@code zstd -1} plus {@code sha256sum} spend (user + system CPU) on the image's non-zero
     * 256 KiB chunks, written to one file first: the CPU floor of hashing and compressing the same
     * bytes, against Tidemark's CPU for the whole full backup (reading, zero detection, hashing,
     * compression, storing).
     */
    private void cpuVsTools(ObjectNode s, long tidemarkCpuNanos) {
        phase.accept("zstd -1 + sha256sum on the same non-zero bytes (CPU baseline)");
        Path nonZero = o.dir().resolve("nonzero.bin");
        long bytes;
        try {
            bytes = TestImage.nonZeroChunks(o.dir().resolve("image.raw"), nonZero, 256 << 10);
        } catch (IOException e) {
            throw new PermanentException("cannot write the non-zero chunks to " + nonZero + ": " + e, e);
        }
        String times = Tools.run(
                "sh",
                "-c",
                "zstd -1 -q -c \"$1\" > /dev/null && sha256sum \"$1\" > /dev/null && times",
                "sh",
                nonZero.toString());
        double tools = childCpuSeconds(times);
        try {
            Files.delete(nonZero);
        } catch (IOException e) {
            throw new PermanentException("cannot remove " + nonZero + ": " + e, e);
        }
        double gb = bytes / 1e9;
        s.put("nonZeroBytes", bytes);
        s.put("tidemarkCpuSecondsPerGB", round(tidemarkCpuNanos / 1e9 / gb));
        s.put("zstdSha256CpuSeconds", round(tools));
        s.put("zstdSha256CpuSecondsPerGB", round(tools / gb));
        s.put("cpuVsZstdSha256", round(tidemarkCpuNanos / 1e9 / tools));
    }

    /** This process's user and system CPU in clock ticks (1/100 s on Linux), from /proc/self/stat. */
    private static long[] cpuTicks() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return new long[] {Long.parseLong(f[11]), Long.parseLong(f[12])};
        } catch (IOException | RuntimeException e) {
            return new long[] {0, 0}; // no /proc: no split
        }
    }

    /** The children's user + system seconds from the second line of sh's {@code times}: {@code 0m1.5s 0m0.2s}. */
    static double childCpuSeconds(String times) {
        String[] lines = times.trim().split("\n");
        double total = 0;
        for (String t : lines[lines.length - 1].trim().split("\\s+")) {
            java.util.regex.Matcher m =
                    java.util.regex.Pattern.compile("(\\d+)m([0-9.]+)s").matcher(t);
            if (!m.matches()) {
                throw new PermanentException("sh's times printed '" + times + "', not NmS.SSSs pairs");
            }
            total += Integer.parseInt(m.group(1)) * 60 + Double.parseDouble(m.group(2));
        }
        return total;
    }

    /** Samples this process's resident set size every 20 ms until closed; {@link #peak()} is the largest. */
    private static final class RssSampler implements AutoCloseable {
        private final java.util.concurrent.atomic.AtomicLong peak = new java.util.concurrent.atomic.AtomicLong();
        private final java.util.concurrent.ScheduledExecutorService timer =
                java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
                        io.tidemark.core.concurrent.DaemonThreads.named("rss-sampler"));

        RssSampler() {
            timer.scheduleAtFixedRate(
                    () -> peak.accumulateAndGet(rss(), Math::max), 0, 20, java.util.concurrent.TimeUnit.MILLISECONDS);
        }

        long peak() {
            peak.accumulateAndGet(rss(), Math::max);
            return peak.get();
        }

        private static long rss() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                    if (line.startsWith("VmRSS:")) {
                        return Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
                    }
                }
            } catch (IOException e) {
                return 0; // no /proc: no figure
            }
            return 0;
        }

        @Override
        public void close() {
            timer.shutdownNow();
        }
    }

    private void incrementalVsRestic(BackupWorker worker, Path raw, Path qcow2) throws IOException {
        Path resticRepo = o.dir().resolve("restic");
        Map<String, String> env = Map.of(
                "RESTIC_PASSWORD",
                "bench",
                "RESTIC_CACHE_DIR",
                o.dir().resolve("restic-cache").toString());
        phase.accept("restic: first backup of the raw image");
        Tools.run(List.of("restic", "init", "-q", "-r", resticRepo.toString(), "--repository-version", "2"), env, 600);
        Timed<JsonNode> resticFull = time(() -> restic(resticRepo, raw, env));

        phase.accept("changing " + o.dirtyFraction() * 100 + " % of the image");
        List<TestImage.Change> changes = TestImage.changes(o.imageSize(), o.dirtyFraction(), 7);
        TestImage.applyRaw(raw, changes);
        TestImage.applyQcow2(qcow2, changes, o.dir().resolve("scratch"));
        long changed = changes.size() * (long) TestImage.K64;

        phase.accept("tidemark: incremental backup");
        long repoBefore = repoBytes();
        Timed<Manifest> inc = time(() -> worker.backup("bench-" + ++jobs, job("image")));
        long written = repoBytes() - repoBefore;
        phase.accept("restic: second backup of the raw image");
        Timed<JsonNode> resticInc = time(() -> restic(resticRepo, raw, env));

        ObjectNode s = report.putObject("incremental");
        s.put("changedBytes", changed);
        s.put("tidemarkSeconds", secs(inc.nanos()));
        s.put("tidemarkBytesRead", inc.value().bytesRead());
        s.put("tidemarkBytesNew", inc.value().bytesNew());
        s.put("tidemarkBytesWritten", written);
        s.put("tidemarkCpuSeconds", secs(inc.cpuNanos()));
        s.put("resticFullSeconds", secs(resticFull.nanos()));
        s.put("resticSeconds", secs(resticInc.nanos()));
        s.put("resticBytesRead", resticInc.value().path("total_bytes_processed").asLong());
        s.put("resticBytesAdded", resticInc.value().path("data_added").asLong());
        s.put("timeVsRestic", round((double) inc.nanos() / resticInc.nanos()));
        s.put(
                "bytesReadVsRestic",
                round((double) inc.value().bytesRead()
                        / Math.max(
                                1,
                                resticInc.value().path("total_bytes_processed").asLong())));
    }

    private void zeroChange(Path raw) {
        Path repo = o.dir().resolve("repo-large");
        try (ImageHypervisor hv = new ImageHypervisor(Clock.systemUTC());
                BackupWorker worker = worker(hv, repo)) {
            zeroChange(hv, worker, raw, repo);
        }
    }

    /** On its own repository, so that its full stores its chunks like any first backup. */
    private void zeroChange(ImageHypervisor hv, BackupWorker worker, Path raw, Path repo) {
        Path large = o.dir().resolve("large.qcow2");
        phase.accept("creating the " + mib(o.largeSize()) + " MiB sparse disk");
        Tools.run("qemu-img", "create", "-q", "-f", "qcow2", large.toString(), Long.toString(o.largeSize()));
        Tools.run("qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", raw.toString(), large.toString());
        hv.add("large", "sda", large);
        phase.accept("tidemark: full backup of the sparse disk");
        long before = Tools.treeBytes(repo);
        Timed<Manifest> full = time(() -> worker.backup("bench-" + ++jobs, job("large")));
        long fullWritten = Tools.treeBytes(repo) - before;
        phase.accept("tidemark: zero-change incremental");
        before = Tools.treeBytes(repo);
        Timed<Manifest> zero = time(() -> worker.backup("bench-" + ++jobs, job("large")));
        long zeroWritten = Tools.treeBytes(repo) - before;
        ObjectNode s = report.putObject("zeroChange");
        s.put("diskBytes", o.largeSize());
        s.put("fullSeconds", secs(full.nanos()));
        s.put("fullBytesRead", full.value().bytesRead());
        s.put("fullBytesWritten", fullWritten);
        s.put("incrementalSeconds", secs(zero.nanos()));
        s.put("incrementalBytesRead", zero.value().bytesRead());
        s.put("incrementalBytesWritten", zeroWritten);
        s.put("timeVsFull", round((double) zero.nanos() / full.nanos()));
    }

    private void clones() throws IOException {
        phase.accept("creating " + o.clones() + " clones of a " + mib(o.cloneSize()) + " MiB base image");
        Path baseRaw = o.dir().resolve("clone-base.raw");
        Path base = o.dir().resolve("clone-base.qcow2");
        TestImage.generate(baseRaw, o.cloneSize());
        Tools.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-S", "0", baseRaw.toString(), base.toString());
        Files.delete(baseRaw);
        Path repo = o.dir().resolve("repo-clones");
        long afterFirst = 0;
        long read = 0;
        long changed = 0;
        try (ImageHypervisor hv = new ImageHypervisor(Clock.systemUTC());
                BackupWorker worker = worker(hv, repo)) {
            for (int k = 0; k < o.clones(); k++) {
                Path clone = o.dir().resolve("clone-" + k + ".qcow2");
                Tools.run(
                        "qemu-img",
                        "create",
                        "-q",
                        "-f",
                        "qcow2",
                        "-b",
                        base.toString(),
                        "-F",
                        "qcow2",
                        clone.toString());
                List<TestImage.Change> changes = TestImage.changes(o.cloneSize(), o.dirtyFraction(), 100 + k);
                TestImage.applyQcow2(clone, changes, o.dir().resolve("scratch"));
                changed += changes.size() * (long) TestImage.K64;
                hv.add("clone-" + k, "sda", clone);
                phase.accept("tidemark: backing up clone " + (k + 1) + " of " + o.clones());
                read += worker.backup("bench-" + ++jobs, job("clone-" + k)).bytesRead();
                if (k == 0) {
                    afterFirst = Tools.treeBytes(repo);
                }
            }
        }
        long stored = Tools.treeBytes(repo);
        ObjectNode s = report.putObject("clones");
        s.put("clones", o.clones());
        s.put("cloneBytes", o.cloneSize());
        s.put("changedBytesPerClone", changed / o.clones());
        s.put("bytesRead", read);
        s.put("repositoryBytes", stored);
        s.put("firstCloneRepositoryBytes", afterFirst);
        s.put("dedupRatio", round((double) read / stored));
        s.put("costInImages", round((double) stored / afterFirst));
    }

    // ---- helpers

    private BackupWorker worker(ImageHypervisor hv, Path repoDir) {
        try {
            Files.createDirectories(repoDir);
        } catch (IOException e) {
            throw new PermanentException("cannot create " + repoDir + ": " + e, e);
        }
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        return worker(hv, repo, o.dir().resolve("w"), BackupWorker.Limits.DEFAULTS);
    }

    /**
     * The worker every bench backs up with: host {@code bench}, reads over NBD, no capture hooks,
     * its events discarded, work files under {@code workDir}.
     */
    static BackupWorker worker(Hypervisor hv, Repository repo, Path workDir, BackupWorker.Limits limits) {
        return new BackupWorker(
                "bench",
                hv,
                repo,
                new DiscardingBus(),
                Clock.systemUTC(),
                workDir,
                CaptureHooks.NONE,
                NbdBlockSource::open,
                limits);
    }

    private long repoBytes() {
        return Tools.treeBytes(o.dir().resolve("repo"));
    }

    private static SnapshotJob job(String vm) {
        return new SnapshotJob(vm, "bench", "bench", Trigger.schedule("bench"), List.of(), Instant.now());
    }

    static JsonNode restic(Path repo, Path file, Map<String, String> env) {
        String out =
                Tools.run(List.of("restic", "-r", repo.toString(), "backup", "--json", file.toString()), env, 7200);
        for (String line : out.split("\n")) {
            if (line.contains("\"summary\"")) {
                try {
                    return Json.mapper().readTree(line);
                } catch (IOException e) {
                    throw new PermanentException("restic printed a summary that is not JSON: " + line, e);
                }
            }
        }
        throw new PermanentException("restic printed no summary: " + out);
    }

    private static Process startNbd(Path image, Path socket) {
        Process p = ExternalCommand.of(
                        "qemu-nbd",
                        "-r",
                        "-t",
                        "-e",
                        "8",
                        "-f",
                        "qcow2",
                        "-x",
                        "sda",
                        "-k",
                        socket.toString(),
                        image.toString())
                .ifMissing("install qemu-utils")
                .start(Path.of(socket + ".log"))
                .process();
        try {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (!Files.exists(socket)) {
                if (!p.isAlive() || System.nanoTime() > deadline) {
                    p.destroyForcibly();
                    throw new PermanentException("qemu-nbd did not listen on " + socket + "; see " + socket + ".log");
                }
                Thread.sleep(5);
            }
            return p;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new PermanentException("interrupted", e);
        }
    }

    private static void waitFor(Process p) {
        try {
            p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private record Timed<T>(T value, long nanos, long cpuNanos) {}

    private interface Work<T> {
        T run() throws IOException;
    }

    private static <T> Timed<T> time(Work<T> work) {
        com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long cpu = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        try {
            T v = work.run();
            return new Timed<>(v, System.nanoTime() - t0, os.getProcessCpuTime() - cpu);
        } catch (IOException e) {
            throw new PermanentException(e.getMessage(), e);
        }
    }

    private static double secs(long nanos) {
        return round(nanos / 1e9);
    }

    private static double mibps(long bytes, long nanos) {
        return round(bytes / (double) MIB / (nanos / 1e9));
    }

    static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private static long mib(long bytes) {
        return bytes / MIB;
    }

    /** The bench has no listeners: the worker's events go nowhere. */
    static final class DiscardingBus implements EventBus {
        @Override
        public void publish(String topic, String key, Event event) {}

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }
}
