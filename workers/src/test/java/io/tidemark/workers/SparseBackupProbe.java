package io.tidemark.workers;

import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Run in a child JVM with a small {@code -Xmx} by {@link SparseDiskBackupIT}: a full backup of one
 * NBD export ({@code <socket> <export> <repository dir>}) through {@link DiskBackup}, printing
 * {@code bytesRead chunksRead millis peakHeapBytes} on one line.
 */
public final class SparseBackupProbe {

    private SparseBackupProbe() {}

    public static void main(String[] args) {
        Path socket = Path.of(args[0]);
        Repository repo = Repository.openOrInit(new FileObjectTarget(Path.of(args[2])), RepositoryConfig.defaults());
        ExecutorService cpu = Executors.newFixedThreadPool(BackupWorker.STORE_THREADS);
        long t0 = System.nanoTime();
        DiskBackup.Outcome out;
        try (BlockSource source = NbdBlockSource.open(new DiskExport(
                args[1],
                0,
                socket,
                args[1],
                Optional.empty(),
                Optional.of(FullReason.of(FullReason.Kind.UNRECORDED, "probe")),
                Optional.empty()))) {
            out = new DiskBackup(repo, cpu, BackupWorker.READS_IN_FLIGHT)
                    .run(source, Optional.empty(), repo.newIndex(source.size(), Optional.empty()));
        } finally {
            cpu.shutdownNow();
        }
        long millis = (System.nanoTime() - t0) / 1_000_000;
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        System.out.println(out.bytesRead() + " " + out.chunksRead() + " " + millis + " " + peak);
    }
}
