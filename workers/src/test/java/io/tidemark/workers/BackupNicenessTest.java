package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.ForwardingObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.workers.nbd.Extent;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A backup's reading and storing threads run at {@code backupNice} once the VM is captured; the
 * capture itself (freeze, QMP, thaw) runs at the worker's own priority.
 */
class BackupNicenessTest {

    private static final int MiB = 1 << 20;

    @TempDir
    Path dir;

    /** The nice values seen by each kind of call during one full backup at {@code nice}. */
    private record Seen(Set<Integer> capture, Set<Integer> reads, Set<Integer> chunkStores) {}

    private static int currentNice() {
        return Niceness.of(Niceness.currentThreadId().orElseThrow()).orElseThrow();
    }

    private Seen backupAt(int nice) {
        FakeHypervisor hv = new FakeHypervisor(Clock.systemUTC());
        hv.addVm("vm1", Map.of("sda", 4 * MiB));
        byte[] data = new byte[2 * MiB];
        new Random(3).nextBytes(data);
        hv.write("vm1", "sda", 0, data);
        Seen seen =
                new Seen(ConcurrentHashMap.newKeySet(), ConcurrentHashMap.newKeySet(), ConcurrentHashMap.newKeySet());
        CaptureHooks hooks = new CaptureHooks() {
            @Override
            public void onCaptured(String vm, Instant capturedAt) {
                seen.capture().add(currentNice());
            }
        };
        BackupWorker.BlockSourceOpener opener = export -> {
            BlockSource s = hv.open(export);
            return new BlockSource() {
                @Override
                public long size() {
                    return s.size();
                }

                @Override
                public List<Extent> extents(String context, long offset, long length) {
                    return s.extents(context, offset, length);
                }

                @Override
                public CompletableFuture<byte[]> read(long offset, int length) {
                    seen.reads().add(currentNice());
                    return s.read(offset, length);
                }

                @Override
                public void close() {
                    s.close();
                }
            };
        };
        Repository repo =
                Repository.openOrInit(new NiceRecording(new InMemoryObjectTarget(), seen), RepositoryConfig.defaults());
        try (BackupWorker worker = new BackupWorker(
                "hv1",
                hv,
                repo,
                new RecordingEventBus(),
                Clock.systemUTC(),
                dir.resolve("work-" + nice),
                hooks,
                opener,
                BackupWorker.Limits.DEFAULTS.withBackupNice(nice))) {
            worker.backup(
                    "j-" + nice,
                    new SnapshotJob("vm1", "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now()));
        }
        return seen;
    }

    @Test
    void readsAndChunkStoresRunAtTheBackupsNiceValueAndTheCaptureDoesNot() {
        int base = currentNice();
        int nice = Math.max(base + 1, 10);
        Seen seen = backupAt(nice);
        assertThat(seen.capture()).containsExactly(base);
        assertThat(seen.reads()).containsExactly(nice);
        assertThat(seen.chunkStores()).containsExactly(nice);
    }

    @Test
    void niceZeroLeavesEveryThreadAtTheWorkersPriority() {
        int base = currentNice();
        Seen seen = backupAt(0);
        assertThat(seen.capture()).containsExactly(base);
        assertThat(seen.reads()).containsExactly(base);
        assertThat(seen.chunkStores()).containsExactly(base);
    }

    /** Records the nice value of each thread that stores a chunk. */
    private static final class NiceRecording extends ForwardingObjectTarget {
        private final Seen seen;

        NiceRecording(ObjectTarget delegate, Seen seen) {
            super(delegate);
            this.seen = seen;
        }

        @Override
        public boolean putIfAbsent(String key, byte[] data) {
            if (key.startsWith("chunks/")) {
                seen.chunkStores().add(currentNice());
            }
            return super.putIfAbsent(key, data);
        }
    }
}
