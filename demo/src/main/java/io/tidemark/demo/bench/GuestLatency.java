package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Guest impact of a full backup: the latency of 4 KiB writes through a running VM's disk while
 * Tidemark backs that disk up (classic image fleecing: QEMU copies the old data of each first write
 * into the scratch image before the write completes), against the same writes with no backup, in
 * the same run.
 *
 * <p>The writes are issued <em>from outside the guest, through the guest's disk</em>: HMP {@code
 * qemu-io -d <device> "write ..."} on the VM's QEMU (TCG, no guest OS), which goes through the
 * device's block backend and so through the copy-before-write filter, as a guest's write does. The
 * latency is what {@code qemu-io} measures for the write itself (from its {@code ops/sec}), not the
 * monitor round trip. Offsets are 4 KiB-aligned, uniformly random over the disk, seeded; the writes
 * before, during and after the backup are of the same kind. The disk holds the first {@code size}
 * bytes of the test image (half random data, half zeros), so the backup reads real data.
 */
final class GuestLatency {

    private static final Pattern OPS = Pattern.compile("and ([0-9.]+) ops/sec");
    private static final int WRITE = 4096;
    private static final long SLOW_SCRATCH = 32 << 10;
    /** Incrementals of a 1 % change in the incremental phase. */
    private static final int INCREMENTALS = 5;

    private GuestLatency() {}

    static void measure(Path dir, long size, int samples, Consumer<String> phase, ObjectNode out) throws IOException {
        Files.createDirectories(dir);
        Path raw = dir.resolve("guest.raw");
        TestImage.generate(raw, size);
        phase.accept("guest latency: starting a " + (size >> 20) + " MiB VM (QEMU, TCG)");
        try (QemuVm vm = QemuVm.start(dir, "guest", size)) {
            vm.quit();
            Tools.run(
                    "qemu-img",
                    "convert",
                    "-n",
                    "-f",
                    "raw",
                    "-O",
                    "qcow2",
                    raw.toString(),
                    vm.diskFile("sd0").toString());
            Files.delete(raw);
            vm.restart();
            out.put("qemuCbwOptions", cbwOptions(vm));
            Random offsets = new Random(11);
            phase.accept("guest latency: " + samples + " writes with no backup");
            List<Double> before = writes(vm, offsets, size, samples, () -> false);
            phase.accept("guest latency: writes during a full backup of the VM (backupMemory "
                    + (BackupWorker.DEFAULT_BACKUP_MEMORY >> 20) + " MiB, the default; classic fleecing, unbounded)");
            ObjectNode during = out.putObject("duringBackup");
            List<Double> busy = during(vm, dir, new Backup("repo", Duration.ZERO, 0), offsets, size, samples, during);
            phase.accept("guest latency: " + samples + " writes with no backup, again");
            List<Double> after = writes(vm, offsets, size, samples, () -> false);
            // bounded captures with the backup threads at backupNice 0 and at the default, in the order
            // A B B A (the page cache and the JIT favour what runs later), each followed by idle writes
            List<Double> busyBounded = new ArrayList<>();
            List<Double> busyBoundedNormal = new ArrayList<>();
            List<Double> afterBounded = new ArrayList<>();
            int[] nices = {0, BackupWorker.DEFAULT_BACKUP_NICE, BackupWorker.DEFAULT_BACKUP_NICE, 0};
            for (int i = 0; i < nices.length; i++) {
                int nice = nices[i];
                phase.accept("guest latency: writes during a full backup of the VM (bounded copy-before-write, "
                        + QmpHypervisor.DEFAULT_CBW_TIMEOUT.toSeconds() + " s; backupNice " + nice + ")");
                ObjectNode o = out.putObject(
                        (nice == 0 ? "duringBackupBoundedNiceZero" : "duringBackupBounded") + (i < 2 ? "" : "Again"));
                (nice == 0 ? busyBoundedNormal : busyBounded)
                        .addAll(during(
                                vm,
                                dir,
                                new Backup("repo-bounded-" + i, QmpHypervisor.DEFAULT_CBW_TIMEOUT, 0).nice(nice),
                                offsets,
                                size,
                                samples,
                                o));
                phase.accept("guest latency: " + samples / 2 + " writes with no backup");
                afterBounded.addAll(writes(vm, offsets, size, samples / 2, () -> false));
            }
            phase.accept(
                    "guest latency: writes during a full backup of the VM (backupMemory 1 MiB: 2 chunks in flight)");
            ObjectNode small = out.putObject("duringBackupSmallWindow");
            List<Double> busySmall = during(
                    vm,
                    dir,
                    new Backup("repo-small", QmpHypervisor.DEFAULT_CBW_TIMEOUT, 0).memory(1L << 20),
                    offsets,
                    size,
                    samples,
                    small);
            phase.accept("guest latency: writes during incrementals of a 1 % change (default capture)");
            ObjectNode incremental = out.putObject("duringIncremental");
            List<Double> busyIncremental = incrementals(vm, dir, offsets, size, samples, incremental);
            // a slow scratch (a drill: QEMU throttles its writes to 32 KiB/s, one 64 KiB copy = 2 s)
            phase.accept("guest latency: slow scratch (32 KiB/s), classic fleecing");
            ObjectNode slowClassic = out.putObject("slowScratchClassic");
            during(
                    vm,
                    dir,
                    new Backup("repo-slow-classic", Duration.ZERO, SLOW_SCRATCH),
                    offsets,
                    size,
                    samples,
                    slowClassic);
            phase.accept("guest latency: slow scratch (32 KiB/s), bounded copy-before-write (1 s)");
            ObjectNode slowBounded = out.putObject("slowScratchBounded");
            during(
                    vm,
                    dir,
                    new Backup("repo-slow-bounded", Duration.ofSeconds(1), SLOW_SCRATCH),
                    offsets,
                    size,
                    samples,
                    slowBounded);
            List<Double> idle = new ArrayList<>(before);
            idle.addAll(after);
            idle.addAll(afterBounded);
            out.put("diskBytes", size);
            out.put("writeBytes", WRITE);
            out.put("issuedFrom", "outside the guest, through its disk: HMP qemu-io on the device (TCG, no guest OS)");
            put(out.putObject("noBackup"), idle);
            out.put("p50VsNoBackup", ratio(busy, idle, 50));
            out.put("p99VsNoBackup", ratio(busy, idle, 99));
            put(out.putObject("boundedPooled"), busyBounded);
            put(out.putObject("boundedNiceZeroPooled"), busyBoundedNormal);
            out.put("boundedP50VsNoBackup", ratio(busyBounded, idle, 50));
            out.put("boundedP99VsNoBackup", ratio(busyBounded, idle, 99));
            out.put("boundedNiceZeroP50VsNoBackup", ratio(busyBoundedNormal, idle, 50));
            out.put("boundedNiceZeroP99VsNoBackup", ratio(busyBoundedNormal, idle, 99));
            out.put("smallWindowP50VsNoBackup", ratio(busySmall, idle, 50));
            out.put("smallWindowP99VsNoBackup", ratio(busySmall, idle, 99));
            out.put("incrementalP50VsNoBackup", ratio(busyIncremental, idle, 50));
            out.put("incrementalP99VsNoBackup", ratio(busyIncremental, idle, 99));
        }
    }

    /**
     * One backup of a phase: into a new repository {@code repoName}, with this copy-before-write bound
     * ({@link Duration#ZERO}: classic), scratch throttle (0: none), chunk memory and backup nice value.
     */
    private record Backup(
            String repoName, Duration cbwTimeout, long scratchBytesPerSecond, long backupMemory, int backupNice) {

        Backup(String repoName, Duration cbwTimeout, long scratchBytesPerSecond) {
            this(
                    repoName,
                    cbwTimeout,
                    scratchBytesPerSecond,
                    BackupWorker.DEFAULT_BACKUP_MEMORY,
                    BackupWorker.DEFAULT_BACKUP_NICE);
        }

        Backup memory(long bytes) {
            return new Backup(repoName, cbwTimeout, scratchBytesPerSecond, bytes, backupNice);
        }

        Backup nice(int nice) {
            return new Backup(repoName, cbwTimeout, scratchBytesPerSecond, backupMemory, nice);
        }
    }

    /** Writes while {@code b}, a full backup of the VM, runs. */
    private static List<Double> during(
            QemuVm vm, Path dir, Backup b, Random offsets, long size, int samples, ObjectNode out) throws IOException {
        String repoName = b.repoName();
        Duration cbwTimeout = b.cbwTimeout();
        long scratchBytesPerSecond = b.scratchBytesPerSecond();
        long backupMemory = b.backupMemory();
        Path repoDir = Files.createDirectories(dir.resolve(repoName));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        try (QmpHypervisor hv = new QmpHypervisor(dir, dir.resolve("state"));
                BackupWorker worker = Bench.worker(
                        hv,
                        repo,
                        dir.resolve("w"),
                        BackupWorker.Limits.DEFAULTS
                                .withMaxConcurrentJobs(1)
                                .withBackupMemory(backupMemory)
                                .withBackupNice(b.backupNice()))) {
            hv.cbwTimeout(cbwTimeout);
            hv.throttleScratch(scratchBytesPerSecond);
            long t0 = System.nanoTime();
            CompletableFuture<Void> backup = CompletableFuture.runAsync(() -> worker.backup(
                    "bench-" + repoName,
                    new SnapshotJob("guest", "bench", "bench", Trigger.schedule("bench"), List.of(), Instant.now())));
            List<Double> ms = writes(vm, offsets, size, 20 * samples, backup::isDone);
            try {
                backup.join();
                out.put("backup", "restore point made");
            } catch (java.util.concurrent.CompletionException e) { // a bounded capture of a slow scratch
                if (scratchBytesPerSecond == 0) {
                    throw e;
                }
                out.put("backup", "failed: " + e.getCause().getMessage());
            }
            out.put("cbwTimeoutSeconds", cbwTimeout.toSeconds());
            out.put("scratchBytesPerSecond", scratchBytesPerSecond);
            out.put("backupMemoryBytes", backupMemory);
            out.put("backupNice", b.backupNice());
            out.put("backupSeconds", Math.round((System.nanoTime() - t0) / 1e6) / 1000.0);
            put(out, ms);
            return ms;
        }
    }

    /**
     * Writes while incrementals run: a full (not timed) into a new repository, then {@link
     * #INCREMENTALS} rounds of a seeded 1 % change (64 KiB writes) and an incremental of it with the
     * writer going, pooled. An incremental reads only its changed chunks, and the default capture
     * copies before a guest write only those (design §5.1.1).
     */
    private static List<Double> incrementals(
            QemuVm vm, Path dir, Random offsets, long size, int samples, ObjectNode out) throws IOException {
        Path repoDir = Files.createDirectories(dir.resolve("repo-incremental"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        List<Double> ms = new ArrayList<>();
        double seconds = 0;
        try (QmpHypervisor hv = new QmpHypervisor(dir, dir.resolve("state"));
                BackupWorker worker = Bench.worker(
                        hv, repo, dir.resolve("w"), BackupWorker.Limits.DEFAULTS.withMaxConcurrentJobs(1))) {
            worker.backup("bench-incremental-0", job());
            Random change = new Random(23);
            int cluster = 64 << 10;
            for (int round = 1; round <= INCREMENTALS; round++) {
                for (int w = 0; w < size / 100 / cluster; w++) {
                    vm.write("sd0", (long) (change.nextDouble() * (size / cluster)) * cluster, cluster, 0x70 + round);
                }
                String id = "bench-incremental-" + round;
                long t0 = System.nanoTime();
                CompletableFuture<Void> backup = CompletableFuture.runAsync(() -> worker.backup(id, job()));
                ms.addAll(writes(vm, offsets, size, 20 * samples, backup::isDone));
                backup.join();
                seconds += (System.nanoTime() - t0) / 1e9;
            }
        }
        out.put("rounds", INCREMENTALS);
        out.put("changePercent", 1);
        out.put("backupSeconds", Math.round(seconds * 1000) / 1000.0);
        put(out, ms);
        return ms;
    }

    private static SnapshotJob job() {
        return new SnapshotJob("guest", "bench", "bench", Trigger.schedule("bench"), List.of(), Instant.now());
    }

    /** {@code p}-th percentile of {@code busy} / that of {@code idle}, to 2 decimals. */
    static double ratio(List<Double> busy, List<Double> idle, double p) {
        return Math.round(percentile(busy, p) / percentile(idle, p) * 100) / 100.0;
    }

    /** Writes until {@code max} writes or {@code stop} says so; the latency of each, in ms. */
    private static List<Double> writes(
            QemuVm vm, Random offsets, long size, int max, java.util.function.BooleanSupplier stop) {
        List<Double> ms = new ArrayList<>();
        long blocks = size / WRITE;
        while (ms.size() < max && (ms.isEmpty() || !stop.getAsBoolean())) { // at least one
            long off = (long) (offsets.nextDouble() * blocks) * WRITE;
            long mark = logSize(vm.log());
            vm.qemuIo("sd0", String.format("write -P 0x%02x %d %d", ms.size() & 0xff, off, WRITE), "ops/sec");
            Matcher m = OPS.matcher(logFrom(vm.log(), mark));
            if (!m.find()) {
                throw new PermanentException("qemu-io printed no ops/sec for a write at " + off + "; see " + vm.log());
            }
            ms.add(1000.0 / Double.parseDouble(m.group(1)));
        }
        return ms;
    }

    /** The members of QEMU's copy-before-write filter options, from {@code query-qmp-schema}. */
    private static ArrayNode cbwOptions(QemuVm vm) {
        JsonNode schema = vm.qmp("query-qmp-schema", QemuVm.args());
        Set<String> names = new TreeSet<>();
        for (JsonNode t : schema) {
            if (t.path("meta-type").asText().equals("object")) {
                Set<String> members = new TreeSet<>();
                t.path("members").forEach(m -> members.add(m.path("name").asText()));
                if (members.contains("bitmap") && members.contains("target") && members.contains("file")
                        || members.contains("on-cbw-error")
                        || members.contains("cbw-timeout")) {
                    names.addAll(members);
                }
            }
        }
        ArrayNode a = io.tidemark.format.Json.mapper().createArrayNode();
        names.forEach(a::add);
        return a;
    }

    /** Puts {@code writes}, {@code p50Ms}, {@code p99Ms} and {@code maxMs} of {@code ms} into {@code o}. */
    static void put(ObjectNode o, List<Double> ms) {
        o.put("writes", ms.size());
        o.put("p50Ms", Math.round(percentile(ms, 50) * 1000) / 1000.0);
        o.put("p99Ms", Math.round(percentile(ms, 99) * 1000) / 1000.0);
        o.put("maxMs", Math.round(percentile(ms, 100) * 1000) / 1000.0);
    }

    static double percentile(List<Double> values, double p) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        int i = (int) Math.ceil(p / 100 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    private static long logSize(Path log) {
        try {
            return Files.size(log);
        } catch (IOException e) {
            throw new PermanentException("cannot read QEMU's log " + log + ": " + e, e);
        }
    }

    private static String logFrom(Path log, long offset) {
        try (SeekableByteChannel ch = Files.newByteChannel(log)) {
            ByteBuffer buf = ByteBuffer.allocate((int) Math.max(0, Math.min(ch.size() - offset, 1 << 20)));
            ch.position(offset);
            while (buf.hasRemaining() && ch.read(buf) > 0) {
                // read on
            }
            return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new PermanentException("cannot read QEMU's log " + log + ": " + e, e);
        }
    }
}
