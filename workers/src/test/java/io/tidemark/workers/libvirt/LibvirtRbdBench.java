package io.tidemark.workers.libvirt;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.NbdExports;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An RBD disk of a libvirt domain (ADR 18, addendum), in one run: a 512 MiB raw image of random
 * bytes (4 MiB objects, fast-diff) beside a small qcow2 disk. Per round, 4 KiB are written in the
 * guest, then timed: (a) the backup through {@link LibvirtHypervisor} that reads the RBD diff from the
 * parent's snapshot, (b) a forced full backup of the same disk through the same path ({@code
 * full-every}), and (c) what every backup of an RBD disk was before: libvirt's own pull backup job
 * over the disk, its whole NBD export read (the read alone, no hashing or storing). A {@code main} in
 * test scope, not a test. Needs root (the libvirtd fixture) and Ceph's packages.
 *
 * <p>Settings: {@code -Dbench.rounds=3 -Dbench.mib=512}.
 */
public final class LibvirtRbdBench {

    private static final long MIB = 1 << 20;

    private LibvirtRbdBench() {}

    public static void main(String[] args) throws Exception {
        int rounds = Integer.getInteger("bench.rounds", 3);
        long mib = Long.getLong("bench.mib", 512);
        Path root = Files.createTempDirectory("tm-rb");
        try (CephCluster ceph = CephCluster.start(root.resolve("ceph"));
                Libvirtd daemon = Libvirtd.start(root.resolve("l"));
                LibvirtDomain d = daemon.startDomain("rbench", 16 * MIB);
                LibvirtHypervisor hv = new LibvirtHypervisor(daemon.uri());
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults()),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        root.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            ceph.createPool("bench");
            cli(ceph, "rbd", "pool", "init", "bench");
            Path data = root.resolve("data.raw");
            cli(ceph, "sh", "-c", "head -c " + mib * MIB + " /dev/urandom > " + data);
            cli(ceph, "rbd", "import", "--no-progress", data.toString(), "bench/disk");
            Files.delete(data);
            Matcher mon = Pattern.compile("(\\d+\\.\\d+\\.\\d+\\.\\d+):(\\d+)").matcher(ceph.monHost());
            mon.find();
            Path xml = root.resolve("sda.xml");
            Files.writeString(
                    xml,
                    "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>"
                            + "<source protocol='rbd' name='bench/disk'><host name='" + mon.group(1) + "' port='"
                            + mon.group(2) + "'/><config file='" + ceph.confFile() + "'/></source>"
                            + "<target dev='sda' bus='scsi'/></disk>");
            daemon.virsh("attach-device", d.name(), xml.toString(), "--live");
            Matcher alias = Pattern.compile("<target dev='sda'[^>]*/>.*?<alias name='([^']+)'/>", Pattern.DOTALL)
                    .matcher(daemon.virsh("dumpxml", d.name()));
            alias.find();

            SnapshotJob inc = job(d.name(), Optional.empty());
            SnapshotJob full = job(d.name(), Optional.of(Duration.ofMillis(1)));
            report("first (full, from the snapshot)", worker.backup("j0", inc), 0);
            for (int i = 1; i <= rounds; i++) {
                long off = (long) i * 37 * MIB + 4096;
                d.hmp("qemu-io -d " + alias.group(1) + " \"write -P " + (i + 1) + " " + off + " 4096\"");
                long t0 = System.nanoTime();
                Manifest m = worker.backup("i" + i, inc);
                report("incremental (RBD diff)", m, System.nanoTime() - t0);
                long t1 = System.nanoTime();
                Manifest f = worker.backup("f" + i, full);
                report("forced full (same path)", f, System.nanoTime() - t1);
                oldPath(daemon, d.name(), root.resolve("old" + i));
            }
        }
    }

    /** libvirt's own pull job over the RBD disk (main's path), its whole export read. */
    private static void oldPath(Libvirtd daemon, String vm, Path dir) throws Exception {
        Files.createDirectories(dir);
        Path sock = dir.resolve("nbd.sock");
        Path backupXml = dir.resolve("backup.xml");
        Files.writeString(
                backupXml,
                "<domainbackup mode='pull'><server transport='unix' socket='" + sock + "'/><disks>"
                        + "<disk name='vda' backup='no'/><disk name='sda' backup='yes' type='file'><scratch file='"
                        + dir.resolve("scratch.qcow2") + "'/></disk></disks></domainbackup>");
        long t0 = System.nanoTime();
        daemon.virsh("backup-begin", vm, backupXml.toString());
        long bytes;
        try {
            bytes = NbdExports.readAll(new DiskExport(
                            "sda",
                            0,
                            sock,
                            "sda",
                            Optional.empty(),
                            Optional.of(io.tidemark.core.event.FullReason.of(
                                    io.tidemark.core.event.FullReason.Kind.NO_PERSISTENT_BITMAPS, "main")),
                            Optional.empty()))
                    .length;
        } finally {
            daemon.virsh("domjobabort", vm);
        }
        System.out.printf(
                "%-34s %8.0f ms  read %6d MiB  (libvirt job, read only)%n",
                "main's path (libvirt job, full)", (System.nanoTime() - t0) / 1e6, bytes / MIB);
    }

    private static SnapshotJob job(String vm, Optional<Duration> fullEvery) {
        return new SnapshotJob(
                vm,
                "hv1",
                "pol",
                Trigger.schedule("pol"),
                List.of(),
                Instant.now(),
                Optional.empty(),
                fullEvery,
                OptionalLong.empty(),
                Optional.empty(),
                OptionalLong.empty());
    }

    private static void report(String what, Manifest m, long nanos) {
        DiskEntry e = m.disk("sda").orElseThrow();
        System.out.printf(
                "%-34s %8.0f ms  read %6d MiB  (%s)%n",
                what,
                nanos / 1e6,
                e.bytesRead() / MIB,
                e.fullReason().map(r -> r.kind().toString()).orElse("incremental"));
    }

    private static void cli(CephCluster ceph, String... args) {
        ExternalCommand.of(List.of(args))
                .env("CEPH_CONF", ceph.confFile().toString())
                .timeout(Duration.ofMinutes(5))
                .run();
    }
}
