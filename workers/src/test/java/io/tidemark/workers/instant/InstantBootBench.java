package io.tidemark.workers.instant;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.guest.CheckGuest;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.qga.QgaGuestAgent;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Instant restore to a booted guest against a full restore plus boot of the same point, in the same
 * run: the point is an ext4 disk like the tiny guest's data disk ({@code mkfs.ext4 -d} of random
 * files filling 3/4 of it); "booted" means the tiny guest ({@link CheckGuest}, the kernel and
 * initramfs of {@code deploy/guest/build-tiny-guest.sh}, TCG) has the disk mounted on {@code /mnt}
 * and its agent answered {@code guest-ping} and a guest-exec listing of {@code /mnt}.
 *
 * <ul>
 *   <li><b>full</b>: {@link Restorer} (8 fetchers) to a raw file, a qcow2 overlay on it, boot;
 *   <li><b>instant</b>: {@link InstantRestore#start} (NBD server + qcow2 overlay), boot on the
 *       overlay straight away.
 * </ul>
 *
 * <p>Not a test: a {@code main} in test scope; {@code bench.mib} (default 512) sets the disk size.
 * Run: see docs/benchmarks.md, section "Instant restore to a booted guest".
 */
public final class InstantBootBench {

    private static final int MIB = 1 << 20;
    private static final Duration BOOT = Duration.ofMinutes(10);

    private InstantBootBench() {}

    public static void main(String[] args) throws Exception {
        long size = Long.getLong("bench.mib", 512) * MIB;
        List<Path> kernel = TinyGuest.build();
        CheckGuest.Kernel k = new CheckGuest.Kernel(kernel.get(0), kernel.get(1));
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "tm-ibb");
        try {
            run(dir, size, k);
        } finally {
            FileTrees.delete(dir);
        }
    }

    private static void run(Path dir, long size, CheckGuest.Kernel kernel) throws Exception {
        long t = System.nanoTime();
        Path content = Files.createDirectories(dir.resolve("content"));
        SplittableRandom random = new SplittableRandom(1);
        byte[] buf = new byte[16 * MIB];
        for (int f = 0; (long) (f + 1) * buf.length <= size * 3 / 4; f++) {
            for (int i = 0; i < buf.length; i += 8) {
                long v = random.nextLong();
                for (int b = 0; b < 8; b++) {
                    buf[i + b] = (byte) (v >>> (8 * b));
                }
            }
            Files.write(content.resolve("data-" + f), buf);
        }
        Path raw = dir.resolve("disk.raw");
        exec("truncate", "-s", Long.toString(size), raw.toString());
        exec("mkfs.ext4", "-q", "-F", "-d", content.toString(), raw.toString());
        String sha = Restorer.sha256(raw);
        try (Stream<Path> files = Files.list(content)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }

        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        byte[] data = new byte[chunk];
        try (InputStream in = Files.newInputStream(raw)) {
            for (long c = 0; c * chunk < size; c++) {
                int n = in.readNBytes(data, 0, chunk);
                index.set(c, repo.putChunk(data, n).digest());
            }
        }
        Instant now = Instant.now();
        Manifest point = new Manifest(
                1,
                RestorePointIds.next(now, new java.util.Random(2)),
                "bench",
                "hv1",
                "job-1",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "bench",
                Optional.empty(),
                List.of(new DiskEntry(
                        TinyGuest.DISK,
                        size,
                        chunk,
                        index.finish().hex(),
                        "tm-1",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(point);
        Files.delete(raw);
        System.out.printf(
                Locale.ROOT,
                "point: %d MiB ext4 (%d MiB of random files) made and written in %.1f s%n",
                size / MIB,
                size * 3 / 4 / MIB / 16 * 16,
                secs(t));

        // baseline: full restore, then boot on an overlay of the restored image
        t = System.nanoTime();
        Restorer.Result full = new Restorer(repo, 8)
                .restoreDisk(point, TinyGuest.DISK, dir.resolve("full.raw"), Restorer.Progress.NONE);
        double restored = secs(t);
        check(full.sha256(), sha, "full restore");
        Path overlay = CheckGuest.overlay(dir.resolve("full.raw"), "raw", dir.resolve("full-ovl.qcow2"));
        double fullBoot = boot(kernel, "full", Files.createDirectories(dir.resolve("gf")), overlay);
        double fullTotal = secs(t);

        // instant: serve the point and boot on the instant-restore overlay at once
        long t0 = System.nanoTime();
        double instantBoot;
        long fetched;
        double served;
        try (InstantRestore ir = InstantRestore.start(
                repo, point, TinyGuest.DISK, dir.resolve("ir"), InstantRestore.Options.defaults())) {
            served = secs(t0);
            instantBoot = boot(kernel, "inst", Files.createDirectories(dir.resolve("gi")), ir.overlay());
            fetched = ir.export().bytesFetched();
        }
        double instantTotal = secs(t0);

        System.out.printf(
                Locale.ROOT,
                "full: restore %.2f s (%.0f MiB/s) + boot to agent and /mnt %.2f s = %.2f s%n",
                restored,
                size / MIB / restored,
                fullBoot,
                fullTotal);
        System.out.printf(
                Locale.ROOT,
                "instant: served + overlay %.3f s + boot to agent and /mnt %.2f s = %.2f s (%.1f MiB fetched)"
                        + " -> %.2fx sooner than full restore + boot%n",
                served,
                instantBoot,
                instantTotal,
                fetched / (double) MIB,
                fullTotal / instantTotal);
    }

    /** Boots the tiny guest on {@code disk} until its agent answers and lists the mounted disk; seconds. */
    private static double boot(CheckGuest.Kernel kernel, String name, Path dir, Path disk) {
        long t = System.nanoTime();
        try (CheckGuest g = CheckGuest.start(kernel, name, dir, List.of(new CheckGuest.Disk("vd0", disk, "qcow2")))) {
            g.awaitAgent(BOOT);
            QgaGuestAgent.ExecResult r =
                    g.agent().exec(BOOT, "/bin/sh", List.of("-c", "grep -q '^/dev/vda /mnt ' /proc/mounts && ls /mnt"));
            if (r.exitCode() != 0 || !r.stdout().contains("data-0")) {
                throw new IllegalStateException(
                        name + ": the guest does not show the disk on /mnt: " + r + "; console: " + g.console());
            }
            return secs(t);
        }
    }

    private static void exec(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
        }
    }

    private static void check(String got, String want, String what) {
        if (!got.equals(want)) {
            throw new IllegalStateException(what + ": sha256 " + got + " differs from the disk's " + want);
        }
    }

    private static double secs(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
