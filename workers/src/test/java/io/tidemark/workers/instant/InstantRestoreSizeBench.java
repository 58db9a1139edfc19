package io.tidemark.workers.instant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.guest.CheckGuest;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.nbd.NbdClient;
import io.tidemark.workers.qga.QgaGuestAgent;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Instant restore into a q35 VM against the disk's size: for sparse points of 1, 8 and 32 GiB (an
 * ext4 file system with 16 MiB of random files, the rest never written), the time from the start of
 * the restore to
 *
 * <ul>
 *   <li><b>readable</b>: {@link InstantRestore#start} (NBD server + overlay), {@link
 *       InstantRestore#pciHotplugBus} on a running q35 QEMU 7.2 (TCG, no guest OS) with one spare
 *       {@code pcie-root-port}, {@code blockdev-add} of the overlay, {@code device_add
 *       virtio-blk-pci,bus=<port>}, and the first 1 MiB of the disk read back through the device's
 *       node (QEMU's own NBD export of it) and compared with the point — what {@code tidemark
 *       restore-instant --qmp … --device virtio-blk-pci} does, minus the JVM start and opening the
 *       repository;
 *   <li><b>booted</b> (unless {@code -Dbench.boot=false}): a fresh {@link InstantRestore#start} and
 *       the tiny guest ({@link CheckGuest}, q35, the overlay as its virtio-blk disk from the start)
 *       booted with the disk mounted on {@code /mnt}, its agent answering and listing the files.
 * </ul>
 *
 * <p>Not a test: a {@code main} in test scope; {@code bench.gib} (default {@code 1,8,32}) lists the
 * sizes. Run: see docs/benchmarks.md, section "Instant restore: q35 and size".
 */
public final class InstantRestoreSizeBench {

    private static final int MIB = 1 << 20;
    private static final long GIB = 1L << 30;
    private static final Duration BOOT = Duration.ofMinutes(10);

    private InstantRestoreSizeBench() {}

    public static void main(String[] args) throws Exception {
        if (System.getProperty("bench.latencyMs") != null) {
            BootPrefetch.main(args);
            return;
        }
        boolean boot = Boolean.parseBoolean(System.getProperty("bench.boot", "true"));
        CheckGuest.Kernel kernel = null;
        if (boot) {
            List<Path> k = TinyGuest.build();
            kernel = new CheckGuest.Kernel(k.get(0), k.get(1));
        }
        System.out.printf(Locale.ROOT, "load average at start: %s%n", loadAverage());
        for (String g : System.getProperty("bench.gib", "1,8,32").split(",")) {
            Path dir = Files.createTempDirectory(Path.of("/tmp"), "tm-irs");
            try {
                run(dir, Long.parseLong(g.trim()) * GIB, kernel);
            } finally {
                FileTrees.delete(dir);
            }
        }
        System.out.printf(Locale.ROOT, "load average at end: %s%n", loadAverage());
    }

    private static void run(Path dir, long size, CheckGuest.Kernel kernel) throws Exception {
        long t = System.nanoTime();
        Path raw = sparseExt4(dir, size);
        byte[] head = new byte[MIB];
        try (FileChannel ch = FileChannel.open(raw)) {
            ch.read(ByteBuffer.wrap(head), 0);
        }
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        long[] stored = new long[2];
        Manifest point = commitSparse(repo, raw, size, stored);
        Files.delete(raw);
        System.out.printf(
                Locale.ROOT,
                "%d GiB point: %d chunks with data (%.1f MiB) of %d, made in %.1f s%n",
                size / GIB,
                stored[0],
                stored[1] / (double) MIB,
                (size + repo.config().chunkSize() - 1) / repo.config().chunkSize(),
                secs(t));

        double readable;
        String bus;
        Path sockDir = Files.createDirectories(dir.resolve("q"));
        Process qemu = startQ35(sockDir);
        try (QmpClient qmp = connect(sockDir.resolve("vm.qmp"), qemu)) {
            long t0 = System.nanoTime();
            try (InstantRestore ir = InstantRestore.start(
                    repo, point, TinyGuest.DISK, dir.resolve("ir"), InstantRestore.Options.defaults())) {
                bus = InstantRestore.pciHotplugBus(qmp).orElse("(default)");
                ir.attach(qmp, "rd0");
                qmp.execute(
                        "device_add",
                        QmpClient.args()
                                .put("driver", "virtio-blk-pci")
                                .put("drive", "rd0")
                                .put("id", "rd0-dev")
                                .put("bus", bus));
                var addr = QmpClient.args().put("type", "unix");
                addr.putObject("data").put("path", sockDir.resolve("e.sock").toString());
                qmp.execute("nbd-server-start", QmpClient.args().set("addr", addr));
                qmp.execute(
                        "block-export-add",
                        QmpClient.args()
                                .put("type", "nbd")
                                .put("id", "e0")
                                .put("node-name", "rd0")
                                .put("name", "seen")
                                .put("writable", false));
                try (NbdClient c = NbdClient.connect(sockDir.resolve("e.sock"), "seen", List.of())) {
                    if (!Arrays.equals(c.read(0, MIB), head)) {
                        throw new IllegalStateException("the first MiB read through the device differs from the point");
                    }
                }
                readable = secs(t0);
                qmp.execute("block-export-del", QmpClient.args().put("id", "e0"));
                qmp.awaitEvent("BLOCK_EXPORT_DELETED", e -> true, Duration.ofSeconds(60));
                qmp.execute("quit");
            }
        } finally {
            qemu.destroyForcibly();
            qemu.waitFor(30, TimeUnit.SECONDS);
        }
        System.out.printf(
                Locale.ROOT,
                "%d GiB: serve + overlay + hot-plug (bus %s) + first MiB read through the device: %.3f s%n",
                size / GIB,
                bus,
                readable);

        String cliClassPath = System.getProperty("bench.cli.cp");
        if (cliClassPath != null) {
            viaCommand(dir, size, head, cliClassPath);
        }

        if (kernel != null) {
            long t0 = System.nanoTime();
            double booted;
            long fetched;
            try (InstantRestore ir = InstantRestore.start(
                    repo, point, TinyGuest.DISK, dir.resolve("ir2"), InstantRestore.Options.defaults())) {
                booted = boot(kernel, Files.createDirectories(dir.resolve("g")), ir.overlay(), t0);
                fetched = ir.export().bytesFetched();
            }
            System.out.printf(
                    Locale.ROOT,
                    "%d GiB: serve + overlay + boot to agent and /mnt: %.2f s (%.1f MiB fetched)%n",
                    size / GIB,
                    booted,
                    fetched / (double) MIB);
        }
    }

    /** A sparse raw disk of {@code size} bytes: ext4 holding four 4 MiB random files {@code data-0…3}. */
    static Path sparseExt4(Path dir, long size) throws Exception {
        Path content = Files.createDirectories(dir.resolve("content"));
        SplittableRandom random = new SplittableRandom(1);
        byte[] buf = new byte[4 * MIB];
        for (int f = 0; f < 4; f++) {
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
        return raw;
    }

    /**
     * Commits only the data extents of a sparse raw file (qemu-img map) as a point of VM "bench";
     * {@code stored} gets the chunks and bytes stored.
     */
    static Manifest commitSparse(Repository repo, Path raw, long size, long[] stored) throws Exception {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        String map = exec("qemu-img", "map", "--output=json", "-f", "raw", raw.toString());
        List<long[]> extents = new ArrayList<>();
        for (JsonNode e : new ObjectMapper().readTree(map)) {
            if (e.path("data").asBoolean()) {
                extents.add(
                        new long[] {e.path("start").asLong(), e.path("length").asLong()});
            }
        }
        long chunks = 0;
        long bytes = 0;
        long last = -1;
        byte[] data = new byte[chunk];
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.READ)) {
            for (long[] x : extents) {
                for (long c = x[0] / chunk; c * chunk < x[0] + x[1]; c++) {
                    if (c <= last) {
                        continue;
                    }
                    last = c;
                    int n = (int) Math.min(chunk, size - c * chunk);
                    ByteBuffer b = ByteBuffer.wrap(data, 0, n);
                    while (b.hasRemaining() && ch.read(b, c * chunk + b.position()) >= 0) {}
                    boolean zero = true;
                    for (int i = 0; i < n && zero; i++) {
                        zero = data[i] == 0;
                    }
                    if (!zero) {
                        index.set(c, repo.putChunk(Arrays.copyOf(data, n), n).digest());
                        chunks++;
                        bytes += n;
                    }
                }
            }
        }
        stored[0] = chunks;
        stored[1] = bytes;
        Instant now = Instant.now();
        Manifest m = new Manifest(
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
        repo.commit(m);
        return m;
    }

    private static Process startQ35(Path dir) throws IOException {
        return new ProcessBuilder(
                        "qemu-system-x86_64",
                        "-machine",
                        "q35",
                        "-accel",
                        "tcg",
                        "-display",
                        "none",
                        "-nodefaults",
                        "-m",
                        "64",
                        "-device",
                        "pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9",
                        "-qmp",
                        "unix:" + dir.resolve("vm.qmp") + ",server=on,wait=off",
                        "-qmp",
                        "unix:" + dir.resolve("vm.ctl") + ",server=on,wait=off")
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("vm.log").toFile())
                .start();
    }

    /**
     * The real command in its own JVM ({@code java -cp CLASSPATH io.tidemark.cli.Main
     * restore-instant … --qmp … --device virtio-blk-pci --json}): seconds from its start to its
     * "attached" summary, and to the first MiB read back through the device (on QEMU's second
     * monitor).
     */
    private static void viaCommand(Path dir, long size, byte[] head, String classPath) throws Exception {
        Path q = Files.createDirectories(dir.resolve("q2"));
        Process qemu = startQ35(q);
        try (QmpClient ctl = connect(q.resolve("vm.ctl"), qemu)) {
            connect(q.resolve("vm.qmp"), qemu).close();
            String java = ProcessHandle.current().info().command().orElse("java");
            long t0 = System.nanoTime();
            Process cmd = new ProcessBuilder(
                            java,
                            "-cp",
                            classPath,
                            "io.tidemark.cli.Main",
                            "restore-instant",
                            "--from",
                            dir.resolve("repo").toString(),
                            "--vm",
                            "bench",
                            "--dir",
                            dir.resolve("ir3").toString(),
                            "--qmp",
                            q.resolve("vm.qmp").toString(),
                            "--device",
                            "virtio-blk-pci",
                            "--node",
                            "rd0",
                            "--json")
                    .redirectError(dir.resolve("cmd.err").toFile())
                    .start();
            try {
                String summary = null;
                var out = new java.io.BufferedReader(
                        new java.io.InputStreamReader(cmd.getInputStream(), StandardCharsets.UTF_8));
                for (String line; (line = out.readLine()) != null; ) {
                    if (line.contains("\"secondsToAttach\"")) {
                        summary = line;
                        break;
                    }
                }
                double attached = secs(t0);
                if (summary == null) {
                    throw new IllegalStateException(
                            "the command ended without attaching: " + Files.readString(dir.resolve("cmd.err")));
                }
                var addr = QmpClient.args().put("type", "unix");
                addr.putObject("data").put("path", q.resolve("e.sock").toString());
                ctl.execute("nbd-server-start", QmpClient.args().set("addr", addr));
                ctl.execute(
                        "block-export-add",
                        QmpClient.args()
                                .put("type", "nbd")
                                .put("id", "e0")
                                .put("node-name", "rd0")
                                .put("name", "seen")
                                .put("writable", false));
                try (NbdClient c = NbdClient.connect(q.resolve("e.sock"), "seen", List.of())) {
                    if (!Arrays.equals(c.read(0, MIB), head)) {
                        throw new IllegalStateException("the first MiB read through the device differs from the point");
                    }
                }
                double readable = secs(t0);
                JsonNode j = new ObjectMapper().readTree(summary);
                System.out.printf(
                        Locale.ROOT,
                        "%d GiB: tidemark restore-instant (own JVM): attached on bus %s after %.2f s (command's own"
                                + " secondsToAttach %.3f), first MiB read through the device after %.2f s%n",
                        size / GIB,
                        j.path("bus").asText("?"),
                        attached,
                        j.path("secondsToAttach").asDouble(),
                        readable);
                ctl.execute("block-export-del", QmpClient.args().put("id", "e0"));
                ctl.awaitEvent("BLOCK_EXPORT_DELETED", e -> true, Duration.ofSeconds(60));
                ctl.execute("quit");
            } finally {
                cmd.destroy();
                cmd.waitFor(60, TimeUnit.SECONDS);
            }
        } finally {
            qemu.destroyForcibly();
            qemu.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static QmpClient connect(Path socket, Process qemu) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(socket)) {
            if (!qemu.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("QEMU did not open " + socket);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
        }
        return QmpClient.connect(socket);
    }

    /** Boots the tiny guest on {@code disk} until its agent lists the mounted disk; seconds since {@code t0}. */
    static double boot(CheckGuest.Kernel kernel, Path dir, Path disk, long t0) {
        return boot(kernel, dir, disk, t0, "");
    }

    /**
     * As {@link #boot(CheckGuest.Kernel, Path, Path, long)}, then {@code andThen} (a shell command
     * run in the guest after the listing, e.g. reading the files) must succeed too.
     */
    static double boot(CheckGuest.Kernel kernel, Path dir, Path disk, long t0, String andThen) {
        try (CheckGuest g = CheckGuest.start(kernel, "irs", dir, List.of(new CheckGuest.Disk("vd0", disk, "qcow2")))) {
            g.awaitAgent(BOOT);
            QgaGuestAgent.ExecResult r = g.agent()
                    .exec(
                            BOOT,
                            "/bin/sh",
                            List.of("-c", "grep -q '^/dev/vda /mnt ' /proc/mounts && ls /mnt" + andThen));
            if (r.exitCode() != 0 || !r.stdout().contains("data-0")) {
                throw new IllegalStateException(
                        "the guest does not show the disk on /mnt: " + r + "; console: " + g.console());
            }
            return secs(t0);
        }
    }

    static String exec(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(10, TimeUnit.MINUTES) || p.exitValue() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    static String loadAverage() throws IOException {
        return Files.readString(Path.of("/proc/loadavg")).trim();
    }

    static double secs(long since) {
        return (System.nanoTime() - since) / 1e9;
    }
}
