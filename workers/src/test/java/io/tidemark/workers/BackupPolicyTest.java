package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the worker honours from the policy: {@code full-every} and the read bandwidth limit, on a fake clock. */
class BackupPolicyTest {

    private static final int MiB = 1 << 20;
    private static final int CHUNK = 256 * 1024;

    @TempDir
    Path dir;

    private final FakeClock clock = new FakeClock(Instant.parse("2026-01-05T00:00:00Z"));
    private final FakeHypervisor hv = new FakeHypervisor(clock);
    private final InMemoryObjectTarget target = new InMemoryObjectTarget("primary");
    private final Random random = new Random(7);
    /** (fake time in ns since the job began, bytes requested before this read) per read. */
    private final List<long[]> reads = new ArrayList<>();

    private Repository repo;
    private BackupWorker worker;

    @BeforeEach
    void setUp() {
        repo = Repository.openOrInit(target, RepositoryConfig.defaults());
        worker = new BackupWorker(
                "hv1",
                hv,
                repo,
                new RecordingEventBus(),
                clock,
                dir.resolve("work"),
                CaptureHooks.NONE,
                this::recordingSource,
                BackupWorker.Limits.DEFAULTS.withSleeper(clock::advance)); // a sleep moves the fake clock
        hv.addVm("vm1", Map.of("sda", 16 * MiB, "sdb", 8 * MiB));
        hv.write("vm1", "sda", 0, randomBytes(6 * MiB));
        hv.write("vm1", "sdb", 2 * MiB, randomBytes(2 * MiB));
    }

    @AfterEach
    void tearDown() {
        worker.close();
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private static SnapshotJob job(Optional<Duration> fullEvery, OptionalLong readBytesPerSecond) {
        return new SnapshotJob(
                "vm1",
                "hv1",
                "gold",
                Trigger.schedule("gold"),
                List.of(),
                Instant.EPOCH,
                Optional.empty(),
                fullEvery,
                readBytesPerSecond);
    }

    @Test
    void fullEveryForcesAFullReadThatSaysWhyAndStoresOnlyWhatTheRepositoryLacks() {
        Optional<Duration> daily = Optional.of(Duration.ofDays(1));
        Manifest first = worker.backup("j1", job(daily, OptionalLong.empty()));
        assertThat(first.disk("sda").orElseThrow().fullReason())
                .hasValueSatisfying(r -> assertThat(r.detail()).contains("first backup"));

        clock.advance(Duration.ofHours(12));
        hv.write("vm1", "sda", 10 * MiB, randomBytes(CHUNK));
        Manifest inc = worker.backup("j2", job(daily, OptionalLong.empty()));
        assertThat(inc.incremental()).isTrue();
        assertThat(inc.bytesRead()).isEqualTo(CHUNK);

        clock.advance(Duration.ofHours(12));
        hv.write("vm1", "sda", 12 * MiB, randomBytes(CHUNK)); // one new chunk
        Manifest forced = worker.backup("j3", job(daily, OptionalLong.empty()));
        for (DiskEntry d : forced.disks()) {
            assertThat(d.fullReason()).hasValueSatisfying(r -> {
                assertThat(r.kind()).isEqualTo(FullReason.Kind.FULL_EVERY);
                assertThat(r.detail()).contains("full-every", "PT24H", first.id());
            });
        }
        // every allocated chunk read again, but only the new one stored
        assertThat(forced.disk("sda").orElseThrow().bytesRead()).isEqualTo(6L * MiB + 2 * CHUNK);
        assertThat(forced.disk("sdb").orElseThrow().bytesRead()).isEqualTo(2L * MiB);
        assertThat(forced.bytesNew()).isEqualTo(CHUNK);

        // the forced full restarts the cadence
        clock.advance(Duration.ofHours(1));
        Manifest next = worker.backup("j4", job(daily, OptionalLong.empty()));
        assertThat(next.incremental()).isTrue();
        clock.advance(Duration.ofHours(23));
        assertThat(worker.backup("j5", job(daily, OptionalLong.empty())).incremental())
                .isFalse();
        // without the setting no full is ever forced
        clock.advance(Duration.ofDays(30));
        assertThat(worker.backup("j6", job(Optional.empty(), OptionalLong.empty()))
                        .incremental())
                .isTrue();
    }

    @Test
    void theReadBandwidthLimitIsHonouredWithinTenPercent() {
        long limit = MiB; // 1 MiB/s: 8 MiB of data take 8 s of fake time
        Instant before = clock.instant();
        Manifest m = worker.backup("j1", job(Optional.empty(), OptionalLong.of(limit)));
        double seconds = Duration.between(before, clock.instant()).toNanos() / 1e9;
        assertThat(m.bytesRead()).isEqualTo(8L * MiB);
        double rate = m.bytesRead() / seconds;
        assertThat(rate).isCloseTo(limit, within(limit * 0.10));
        // never ahead of the budget at any moment, beyond the one read admitted at the start
        long startNanos = reads.get(0)[0];
        for (long[] r : reads) {
            double allowed = (r[0] - startNanos) / 1e9 * limit + CHUNK;
            assertThat((double) r[1]).isLessThanOrEqualTo(allowed);
        }

        // the same job without a limit takes no (fake) time at all
        hv.write("vm1", "sda", 0, randomBytes(CHUNK));
        Instant t = clock.instant();
        worker.backup("j2", job(Optional.empty(), OptionalLong.empty()));
        assertThat(clock.instant()).isEqualTo(t);
    }

    /** The fake hypervisor's source, recording when each read is issued and how much came before it. */
    private BlockSource recordingSource(DiskExport export) {
        BlockSource inner = hv.open(export);
        return new BlockSource() {
            @Override
            public long size() {
                return inner.size();
            }

            @Override
            public List<io.tidemark.workers.nbd.Extent> extents(String context, long offset, long length) {
                return inner.extents(context, offset, length);
            }

            @Override
            public CompletableFuture<byte[]> read(long offset, int length) {
                synchronized (reads) {
                    long before = reads.isEmpty() ? 0 : reads.get(reads.size() - 1)[1] + reads.get(reads.size() - 1)[2];
                    Instant now = clock.instant();
                    reads.add(new long[] {now.getEpochSecond() * 1_000_000_000L + now.getNano(), before, length});
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
