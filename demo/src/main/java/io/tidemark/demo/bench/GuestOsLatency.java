package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Accelerators;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * Guest impact of a full backup, <em>measured inside the guest</em>: the latency of synchronous
 * 4 KiB writes a program in a running Linux guest issues to its disk while Tidemark backs the VM
 * up, against the same writes with no backup, in one VM and one run.
 *
 * <p>The guest is the tests' {@link TinyGuest} (a Debian kernel and a busybox initramfs, virtio-blk
 * disks, KVM where the host offers it, else TCG). Its disk {@code vd1} ({@code /dev/vdb}, no file
 * system) is a qcow2 image written from the host before boot with the first {@code size} bytes of
 * the {@link TestImage} (half random, half zeros, every cluster allocated), so the backup reads
 * real data and a guest write never allocates. The writer is {@code /bin/tm-wlat}
 * ({@code deploy/guest/guest-write-latency.c}): it opens {@code /dev/vdb} with {@code
 * O_DIRECT|O_DSYNC}, so each {@code pwrite} is a write plus a flush through virtio-blk (what a
 * database's commit waits for; the flush reaches the capture's scratch image too), at seeded random
 * 4 KiB-aligned offsets, {@link #PACE_MICROS} apart, and times each with {@code CLOCK_MONOTONIC}
 * in the guest. The guest's clock is virtual, so under TCG a figure includes the emulation's own
 * cost; the idle phases, same VM and same writer, are the baseline.
 *
 * <p>Phases, in this order: {@code samples} writes with no backup; writes during a full backup
 * with the default capture (bounded copy-before-write, {@link QmpHypervisor#DEFAULT_CBW_TIMEOUT});
 * {@code samples} idle writes; writes during a full with the classic capture ({@code cbwTimeout}
 * 0); {@code samples} idle writes. During a backup the writer runs from just before the backup
 * starts (the host waits for its first write) until the backup has returned (the host then creates
 * its stop file). Each backup goes into a new repository, through the real {@link QmpHypervisor}
 * and {@link BackupWorker} at its default limits (the backup threads at {@code backupNice}), as
 * {@link GuestLatency} does. Each phase reports its writer's seed:
 * with the writes count, it tells which blocks the writer wrote.
 */
final class GuestOsLatency {

    /** The pause between two writes: a database committing about 200 times a second. */
    static final long PACE_MICROS = 5000;

    /** The in-guest writer, from {@code deploy/guest/build-tiny-guest.sh}. */
    static final String WRITER = "/bin/tm-wlat";

    /** The disk written and backed up, as the guest names it. */
    static final String DEVICE = "/dev/vdb";

    private static final String VM = "gl";
    private static final long DATA_DISK = 64L << 20;
    private static final int WRITE = 4096;
    /** The most writes of one phase during a backup (the writer holds them in memory: 4 bytes each). */
    private static final int MAX_DURING = 1_000_000;
    /** Bound on one guest-agent command and on each wait for the writer. */
    private static final Duration GUEST = Duration.ofMinutes(2);

    private GuestOsLatency() {}

    /**
     * Runs the phases on a new tiny guest in {@code dir} (keep it short: it holds the VM's sockets)
     * and puts the figures into {@code out}.
     *
     * @param size the backed-up disk's size, a multiple of 1 MiB
     * @param samples writes per idle phase
     */
    static void measure(Path dir, long size, int samples, Consumer<String> phase, ObjectNode out) throws IOException {
        Path abs = Files.createDirectories(dir).toAbsolutePath();
        Path raw = abs.resolve("vd1.raw");
        Path image = abs.resolve(VM + "-vd1.qcow2");
        phase.accept("guest-os latency: writing the " + (size >> 20) + " MiB test image into the guest's disk");
        TestImage.generate(raw, size);
        // -S 0: the zeros are written too, so every cluster is allocated and a guest write never allocates
        Tools.run("qemu-img", "convert", "-q", "-S", "0", "-f", "raw", "-O", "qcow2", raw.toString(), image.toString());
        Files.delete(raw);
        // qemu-img convert does not flush its output: without this, the guest's first flush would
        // write back the whole image and land on the first idle write (~150 ms at 256 MiB)
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        phase.accept("guest-os latency: booting the tiny guest (" + accelerator() + ")");
        try (TinyGuest guest = TinyGuest.boot(abs, VM, DATA_DISK, List.of(image))) {
            requireWriter(guest);
            List<Double> idle = new ArrayList<>();
            ArrayNode idlePhases = out.putArray("idlePhases");
            idle.addAll(idle(guest, 1, size, samples, phase, idlePhases));
            phase.accept("guest-os latency: writes during a full backup (default capture: bounded copy-before-write, "
                    + QmpHypervisor.DEFAULT_CBW_TIMEOUT.toSeconds() + " s)");
            List<Double> bounded = during(
                    guest,
                    abs,
                    "repo-bounded",
                    QmpHypervisor.DEFAULT_CBW_TIMEOUT,
                    BackupWorker.DEFAULT_BACKUP_NICE,
                    2,
                    size,
                    out.putObject("duringBackup"));
            idle.addAll(idle(guest, 3, size, samples, phase, idlePhases));
            phase.accept("guest-os latency: writes during a full backup (classic capture, unbounded)");
            List<Double> classic = during(
                    guest,
                    abs,
                    "repo-classic",
                    Duration.ZERO,
                    BackupWorker.DEFAULT_BACKUP_NICE,
                    4,
                    size,
                    out.putObject("duringBackupClassic"));
            idle.addAll(idle(guest, 5, size, samples, phase, idlePhases));
            // the default capture again with the backup's threads at the normal priority (design §5.1.2);
            // it runs last, so the page cache favours it, if anything
            phase.accept("guest-os latency: writes during a full backup (bounded copy-before-write, backupNice 0)");
            List<Double> normal = during(
                    guest,
                    abs,
                    "repo-nice0",
                    QmpHypervisor.DEFAULT_CBW_TIMEOUT,
                    0,
                    6,
                    size,
                    out.putObject("duringBackupNiceZero"));
            idle.addAll(idle(guest, 7, size, samples, phase, idlePhases));
            out.put("diskBytes", size);
            out.put("writeBytes", WRITE);
            out.put("paceMicros", PACE_MICROS);
            out.put("accelerator", Accelerators.whyNoKvm().isEmpty() ? "KVM" : "TCG");
            Accelerators.whyNoKvm().ifPresent(why -> out.put("whyNoKvm", why));
            out.put(
                    "issuedFrom",
                    "inside the guest: " + WRITER + " pwrite()s with O_DIRECT|O_DSYNC on " + DEVICE
                            + " (virtio-blk), timed with the guest's CLOCK_MONOTONIC");
            GuestLatency.put(out.putObject("noBackup"), idle);
            out.put("p50VsNoBackup", GuestLatency.ratio(bounded, idle, 50));
            out.put("p99VsNoBackup", GuestLatency.ratio(bounded, idle, 99));
            out.put("classicP50VsNoBackup", GuestLatency.ratio(classic, idle, 50));
            out.put("classicP99VsNoBackup", GuestLatency.ratio(classic, idle, 99));
            out.put("niceZeroP50VsNoBackup", GuestLatency.ratio(normal, idle, 50));
            out.put("niceZeroP99VsNoBackup", GuestLatency.ratio(normal, idle, 99));
        }
    }

    /** {@code samples} paced writes with no backup (seed {@code seed}); their latencies in ms. */
    private static List<Double> idle(
            TinyGuest guest, int seed, long size, int samples, Consumer<String> phase, ArrayNode phases) {
        phase.accept("guest-os latency: " + samples + " writes with no backup");
        String outFile = "/tmp/wlat-" + seed + ".out";
        Duration deadline = GUEST.plus(Duration.ofMillis(samples * PACE_MICROS / 1000 * 4));
        List<Double> ms =
                parse(guest.shOk(writer(seed, samples, size, null, null, outFile) + " && cat " + outFile, deadline));
        if (ms.size() != samples) {
            throw new PermanentException(WRITER + " in guest " + guest.name() + " reported " + ms.size()
                    + " latencies for " + samples + " writes; see " + guest.log());
        }
        GuestLatency.put(phases.addObject().put("seed", seed), ms);
        return ms;
    }

    /**
     * Writes while a full backup of the guest into a new repository {@code repoName} runs: starts
     * the writer, waits for its first write, backs up, stops the writer; the latencies in ms.
     */
    private static List<Double> during(
            TinyGuest guest,
            Path dir,
            String repoName,
            Duration cbwTimeout,
            int backupNice,
            int seed,
            long size,
            ObjectNode out)
            throws IOException {
        String base = "/tmp/wlat-" + seed;
        String ready = base + ".ready";
        String stop = base + ".stop";
        String outFile = base + ".out";
        String exit = base + ".exit";
        String err = base + ".err";
        // the shell records the writer's exit status after it ended, so the host can tell an early failure
        guest.spawn(writer(seed, MAX_DURING, size, stop, ready, outFile) + " 2>" + err + "; echo $? >" + exit);
        await(guest, ready, exit, err);
        Path repoDir = Files.createDirectories(dir.resolve(repoName));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        long nanos;
        try (QmpHypervisor hv = new QmpHypervisor(dir, dir.resolve("state"));
                BackupWorker worker = Bench.worker(
                        hv,
                        repo,
                        dir.resolve("w"),
                        BackupWorker.Limits.DEFAULTS.withMaxConcurrentJobs(1).withBackupNice(backupNice))) {
            hv.cbwTimeout(cbwTimeout);
            long t0 = System.nanoTime();
            worker.backup(
                    "bench-" + repoName,
                    new SnapshotJob(VM, "bench", "bench", Trigger.schedule("bench"), List.of(), Instant.now()));
            nanos = System.nanoTime() - t0;
        } finally {
            guest.shOk("touch " + stop, GUEST);
        }
        await(guest, exit, exit, err);
        String status = guest.shOk("cat " + exit, GUEST).trim();
        if (!status.equals("0")) {
            throw new PermanentException(WRITER + " in guest " + guest.name() + " exited " + status + ": "
                    + guest.shOk("cat " + err, GUEST).trim());
        }
        List<Double> ms = parse(guest.shOk("cat " + outFile, GUEST));
        out.put("seed", seed);
        out.put("cbwTimeoutSeconds", cbwTimeout.toSeconds());
        out.put("backupNice", backupNice);
        out.put("backup", "restore point made");
        out.put("backupSeconds", Math.round(nanos / 1e6) / 1000.0);
        GuestLatency.put(out, ms);
        return ms;
    }

    /**
     * The writer's command line: {@code max} writes of seed {@code seed} over the first {@code size}
     * bytes of {@link #DEVICE}, paced, latencies (µs, one a line) to {@code outFile}; with a stop
     * and a ready file when not null.
     */
    static String writer(int seed, int max, long size, String stopFile, String readyFile, String outFile) {
        return WRITER + " -s " + seed + " -p " + PACE_MICROS + " -n " + max
                + (stopFile != null ? " -x " + stopFile : "")
                + (readyFile != null ? " -r " + readyFile : "")
                + " " + DEVICE + " " + size + " " + outFile;
    }

    /**
     * Waits until {@code file} exists in the guest; fails with the writer's stderr if the writer
     * ended first ({@code exitFile} exists, {@code file} does not), or after {@link #GUEST}.
     */
    static void await(TinyGuest guest, String file, String exitFile, String errFile) {
        long deadline = System.nanoTime() + GUEST.toNanos();
        String probe = "if [ -f " + file + " ]; then exit 0; elif [ -f " + exitFile + " ]; then cat " + errFile
                + "; exit 2; else exit 1; fi";
        while (true) {
            TinyGuest.Exec e = guest.sh(probe, GUEST);
            if (e.exitCode() == 0) {
                return;
            }
            if (e.exitCode() == 2) {
                throw new PermanentException(WRITER + " in guest " + guest.name() + " ended before " + file
                        + " existed: " + e.stdout().trim());
            }
            if (System.nanoTime() > deadline) {
                throw new PermanentException("guest " + guest.name() + " had no " + file + " within " + GUEST
                        + "; the guest is slow or " + WRITER + " hangs (console: " + guest.log() + ")");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    /** The writer's output, one latency in µs a line, in ms. */
    static List<Double> parse(String lines) {
        List<Double> ms = new ArrayList<>();
        for (String line : lines.split("\n")) {
            if (!line.isBlank()) {
                try {
                    ms.add(Long.parseLong(line.trim()) / 1000.0);
                } catch (NumberFormatException e) {
                    throw new PermanentException(WRITER + " wrote '" + line + "', not a latency in µs", e);
                }
            }
        }
        return ms;
    }

    /** Fails early, saying how to fix it, when the guest has no writer (a tiny guest built before it). */
    private static void requireWriter(TinyGuest guest) {
        if (guest.sh("test -x " + WRITER, GUEST).exitCode() != 0) {
            throw new PermanentException("the tiny guest in " + TinyGuest.cacheDir() + " has no " + WRITER
                    + "; rebuild it with deploy/guest/build-tiny-guest.sh " + TinyGuest.cacheDir()
                    + " (needs gcc and libc6-dev) from this source tree");
        }
    }

    private static String accelerator() {
        return Accelerators.whyNoKvm().map(why -> "TCG: " + why).orElse("KVM");
    }
}
