package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.Sleeper;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host's aggregate read limit on real QEMU: two VMs backed up at once by one worker whose host
 * limit is 4 MiB/s read 16 MiB each; measured from their NBD read requests, together they stay
 * under the limit, and they share it (each gets about half while both read).
 */
class HostReadLimitIT {

    private static final int MIB = 1 << 20;
    private static final long HOST_LIMIT = 4L * MIB;

    @TempDir
    Path dir;

    /** One NBD read request: when it was sent (System.nanoTime), by which VM, how long. */
    private record Read(long at, String vm, int length) {}

    private final List<Read> reads = new ArrayList<>();

    @Test
    void twoConcurrentBackupsTogetherStayUnderTheHostLimitAndShareIt() throws Exception {
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        QmpHypervisor hv = new QmpHypervisor(dir);
        try (QemuVm a = QemuVm.start(dir, "qa", 32L * MIB);
                QemuVm b = QemuVm.start(dir, "qb", 48L * MIB); // its size tells its reads apart
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        repo,
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        this::recording,
                        BackupWorker.Limits.DEFAULTS
                                .withMaxConcurrentJobs(2)
                                .withHostReadLimit(HostReadLimit.of(
                                        OptionalLong.of(HOST_LIMIT),
                                        OptionalLong.empty(),
                                        Clock.systemUTC(),
                                        Sleeper.SYSTEM)))) {
            int pattern = 1;
            for (int i = 0; i < 16; i++) {
                a.write("sd0", (long) i * MIB, MIB, pattern++);
                b.write("sd0", (long) i * MIB, MIB, pattern++);
            }
            CompletableFuture<Manifest> ja = CompletableFuture.supplyAsync(() -> worker.backup("ja", job("qa")));
            CompletableFuture<Manifest> jb = CompletableFuture.supplyAsync(() -> worker.backup("jb", job("qb")));
            Manifest ma = ja.get(60, TimeUnit.SECONDS);
            Manifest mb = jb.get(60, TimeUnit.SECONDS);
            assertThat(ma.bytesRead()).isEqualTo(16L * MIB);
            assertThat(mb.bytesRead()).isEqualTo(16L * MIB);
        } finally {
            hv.close();
        }

        List<Read> all;
        synchronized (reads) {
            all = List.copyOf(reads);
        }
        long first = all.get(0).at();
        Read last = all.get(all.size() - 1);
        long bytes = all.stream().mapToLong(Read::length).sum();
        // the bytes sent before the last request took at least their time at the limit
        double seconds = (last.at() - first) / 1e9;
        double rate = (bytes - last.length()) / seconds;
        System.out.printf(
                "2 jobs, host limit %.1f MiB/s: %d MiB in %.2f s of reads = %.2f MiB/s combined%n",
                HOST_LIMIT / (double) MIB, bytes / MIB, seconds, rate / MIB);
        assertThat(rate).isLessThanOrEqualTo(HOST_LIMIT * 1.05);
        // and close to it (the host limit, not something else, bound the reads): 32 MiB in about 8 s
        assertThat(rate).isGreaterThan(HOST_LIMIT * 0.5);

        // shared: while both jobs read, each sent about half of the requests
        long bothFrom = Math.max(firstOf(all, "qa"), firstOf(all, "qb"));
        long bothTo = Math.min(lastOf(all, "qa"), lastOf(all, "qb"));
        long ofA = all.stream()
                .filter(r -> r.vm().equals("qa") && r.at() >= bothFrom && r.at() <= bothTo)
                .count();
        long ofB = all.stream()
                .filter(r -> r.vm().equals("qb") && r.at() >= bothFrom && r.at() <= bothTo)
                .count();
        System.out.printf("while both read: %d requests of qa, %d of qb%n", ofA, ofB);
        assertThat(ofA + ofB).isGreaterThan(20);
        assertThat((double) ofA / (ofA + ofB)).isBetween(0.35, 0.65);
    }

    private static long firstOf(List<Read> all, String vm) {
        return all.stream()
                .filter(r -> r.vm().equals(vm))
                .mapToLong(Read::at)
                .min()
                .orElseThrow();
    }

    private static long lastOf(List<Read> all, String vm) {
        return all.stream()
                .filter(r -> r.vm().equals(vm))
                .mapToLong(Read::at)
                .max()
                .orElseThrow();
    }

    private static SnapshotJob job(String vm) {
        return new SnapshotJob(vm, "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now());
    }

    /** The real NBD source, recording each read request as it is sent. */
    private BlockSource recording(DiskExport export) {
        BlockSource inner = NbdBlockSource.open(export);
        String vm = export.sizeBytes() == 32L * MIB ? "qa" : "qb";
        return new BlockSource() {
            @Override
            public long size() {
                return inner.size();
            }

            @Override
            public List<Extent> extents(String context, long offset, long length) {
                return inner.extents(context, offset, length);
            }

            @Override
            public CompletableFuture<byte[]> read(long offset, int length) {
                synchronized (reads) {
                    reads.add(new Read(System.nanoTime(), vm, length));
                }
                return inner.read(offset, length);
            }

            @Override
            public void close() {
                inner.close();
            }
        };
    }
}
