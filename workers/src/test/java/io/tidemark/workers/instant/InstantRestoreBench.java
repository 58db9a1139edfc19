package io.tidemark.workers.instant;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.nbd.NbdClient;
import io.tidemark.workers.qmp.QmpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

/**
 * Instant restore against a full restore of the same point, in the same run: time to first byte
 * (QEMU attached, its first read answered through the overlay and our NBD server), time until QEMU
 * has read the whole disk through the overlay, and time until the disk is hydrated to a local image
 * and the VM pivoted; each as a ratio to a full {@link Restorer} restore of the point. Not a test: a
 * {@code main} in test scope. Time to a booted guest: {@link InstantBootBench}.
 *
 * <p>{@code bench.mib} (default 1024) sets the disk size; every 8th chunk is zero (a hole). Run: see
 * docs/benchmarks.md, section "Instant restore".
 */
public final class InstantRestoreBench {

    private static final int MIB = 1 << 20;

    private InstantRestoreBench() {}

    public static void main(String[] args) throws Exception {
        long size = Long.getLong("bench.mib", 1024) * MIB;
        Path dir = Files.createTempDirectory("tm-irb");
        try {
            run(dir, size);
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder())
                        .forEach(p -> p.toFile().delete());
            }
        }
    }

    private static void run(Path dir, long size) throws Exception {
        FileObjectTarget target = new FileObjectTarget(Files.createDirectories(dir.resolve("repo")));
        Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        long t = System.nanoTime();
        MessageDigest md = Digest.newSha256();
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        SplittableRandom random = new SplittableRandom(1);
        byte[] data = new byte[chunk];
        for (long c = 0; c * chunk < size; c++) {
            if (c % 8 == 0) {
                java.util.Arrays.fill(data, (byte) 0);
            } else {
                for (int i = 0; i < chunk; i += 8) {
                    long v = random.nextLong();
                    for (int b = 0; b < 8; b++) {
                        data[i + b] = (byte) (v >>> (8 * b));
                    }
                }
            }
            md.update(data);
            index.set(c, repo.putChunk(data, chunk).digest());
        }
        String sha = HexFormat.of().formatHex(md.digest());
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
                        "sd0",
                        size,
                        chunk,
                        index.finish().hex(),
                        "tm-1",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(point);
        System.out.printf(Locale.ROOT, "point: %d MiB (1/8 holes) written in %.1f s%n", size / MIB, secs(t));

        // baseline: a full restore of the same point
        t = System.nanoTime();
        Restorer.Result full =
                new Restorer(repo, 8).restoreDisk(point, "sd0", dir.resolve("full.raw"), Restorer.Progress.NONE);
        double fullSecs = secs(t);
        check(full.sha256(), sha, "full restore");
        Files.delete(dir.resolve("full.raw"));
        System.out.printf(
                Locale.ROOT,
                "full restore (Restorer, 8 fetchers): %.2f s, %.0f MiB/s%n",
                fullSecs,
                size / MIB / fullSecs);

        try (QemuVm vm = QemuVm.start(dir, "vm", MIB);
                QmpClient qmp = QmpClient.connect(vm.qmpSocket())) {
            // instant: serve, create the overlay, attach to the running QEMU, first read
            long t0 = System.nanoTime();
            try (InstantRestore ir =
                    InstantRestore.start(repo, point, "sd0", dir.resolve("ir"), InstantRestore.Options.defaults())) {
                ir.attach(qmp, "rd0-ovl");
                qmp.execute(
                        "device_add",
                        QmpClient.args()
                                .put("driver", "scsi-hd")
                                .put("drive", "rd0-ovl")
                                .put("id", "rd0"));
                double attached = secs(t0);
                vm.qemuIo("rd0", "read 4096 4096", "read 4096/4096 bytes at offset 4096");
                double ttfb = secs(t0);

                // QEMU reads the whole disk through the overlay (QEMU's own NBD export of the node)
                var addr = QmpClient.args().put("type", "unix");
                addr.putObject("data").put("path", dir.resolve("q.sock").toString());
                qmp.execute("nbd-server-start", QmpClient.args().set("addr", addr));
                qmp.execute(
                        "block-export-add",
                        QmpClient.args()
                                .put("type", "nbd")
                                .put("id", "e0")
                                .put("node-name", "rd0-ovl")
                                .put("name", "seen")
                                .put("writable", false));
                String seen = readAll(dir.resolve("q.sock"));
                double fullyRead = secs(t0);
                check(seen, sha, "read through QEMU");
                qmp.execute("block-export-del", QmpClient.args().put("id", "e0"));
                qmp.awaitEvent("BLOCK_EXPORT_DELETED", e -> true, Duration.ofMinutes(1));
                qmp.execute("nbd-server-stop");

                System.out.printf(Locale.ROOT, "instant: served + overlay + attached in %.3f s%n", attached);
                System.out.printf(
                        Locale.ROOT,
                        "instant: time to first byte (first guest read answered) %.3f s -> %.1fx sooner than the full restore ends%n",
                        ttfb,
                        fullSecs / ttfb);
                System.out.printf(
                        Locale.ROOT,
                        "instant: whole disk read by QEMU through the overlay after %.2f s (%.0f MiB/s) -> %.2fx the full restore's time%n",
                        fullyRead,
                        size / MIB / (fullyRead - ttfb),
                        fullyRead / fullSecs);
                // the VM drops this disk before its server stops
                qmp.execute("device_del", QmpClient.args().put("id", "rd0"));
                qmp.awaitEvent(
                        "DEVICE_DELETED",
                        e -> "rd0".equals(e.path("data").path("device").asText()),
                        Duration.ofMinutes(1));
                ir.detach(qmp, "rd0-ovl");
            }

            // a second, cold instant restore: serve, attach, hydrate to a local raw image, pivot
            long t1 = System.nanoTime();
            try (InstantRestore ir =
                    InstantRestore.start(repo, point, "sd0", dir.resolve("ir2"), InstantRestore.Options.defaults())) {
                ir.attach(qmp, "rd1-ovl");
                qmp.execute(
                        "device_add",
                        QmpClient.args()
                                .put("driver", "scsi-hd")
                                .put("drive", "rd1-ovl")
                                .put("id", "rd1"));
                long th = System.nanoTime();
                InstantRestore.Hydration h = ir.hydrate(
                        qmp, "rd1-ovl", dir.resolve("local.raw"), "raw", "rd1-local", InstantRestore.Progress.NONE);
                ir.detach(qmp, "rd1-ovl");
                double hydrated = secs(t1);
                double hydrateOnly = secs(th);
                long fetched = ir.export().chunksFetched();
                qmp.close();
                vm.quit();
                check(Restorer.sha256(dir.resolve("local.raw")), sha, "hydrated image");
                System.out.printf(
                        Locale.ROOT,
                        "instant: cold serve + attach + hydrate + pivot %.2f s (mirror %.2f s, %d MiB copied, %d chunks fetched) -> %.2fx the full restore's time%n",
                        hydrated,
                        hydrateOnly,
                        h.bytesCopied() / MIB,
                        fetched,
                        hydrated / fullSecs);
                System.out.println("guest boot: see InstantBootBench");
            }
        }
    }

    private static String readAll(Path socket) {
        try (NbdClient c = NbdClient.connect(socket, "seen", List.of())) {
            MessageDigest md = Digest.newSha256();
            int piece = 4 * MIB;
            Deque<CompletableFuture<byte[]>> inFlight = new ArrayDeque<>();
            for (long off = 0; off < c.size(); off += piece) {
                inFlight.add(c.readAsync(off, (int) Math.min(piece, c.size() - off)));
                if (inFlight.size() >= 8) {
                    md.update(inFlight.poll().join());
                }
            }
            while (!inFlight.isEmpty()) {
                md.update(inFlight.poll().join());
            }
            return HexFormat.of().formatHex(md.digest());
        }
    }

    private static void check(String got, String want, String what) {
        if (!got.equals(want)) {
            throw new IllegalStateException(what + ": sha256 " + got + " differs from the point's " + want);
        }
    }

    private static double secs(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
