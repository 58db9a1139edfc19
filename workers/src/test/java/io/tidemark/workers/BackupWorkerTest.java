package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The backup pipeline on fakes: fast, and the place for edge cases. QEMU itself is in the ITs. */
class BackupWorkerTest {

    private static final int MiB = 1 << 20;
    private static final int CHUNK = 256 * 1024;

    @TempDir
    Path dir;

    private final FakeHypervisor hv = new FakeHypervisor(Clock.systemUTC());
    private final InMemoryObjectTarget target = new InMemoryObjectTarget("primary");
    private final RecordingEventBus bus = new RecordingEventBus();
    private Repository repo;
    private BackupWorker worker;
    private final Random random = new Random(42);

    @BeforeEach
    void setUp() {
        repo = Repository.openOrInit(target, RepositoryConfig.defaults());
        worker = new BackupWorker(
                "hv1", hv, repo, bus, Clock.systemUTC(), dir.resolve("work"), CaptureHooks.NONE, hv::open);
        hv.addVm("vm1", Map.of("sda", 8 * MiB, "sdb", 4 * MiB));
        hv.write("vm1", "sda", 0, randomBytes(MiB)); // 4 chunks of data, the rest zeros
        hv.write("vm1", "sdb", 3 * MiB, randomBytes(4096));
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

    private static SnapshotJob job() {
        return new SnapshotJob("vm1", "hv1", "pol", Trigger.schedule("pol"), List.of("offsite"), Instant.now());
    }

    private String restoredSha(Manifest m, String disk) {
        return new Restorer(repo, 4)
                .restoreDisk(m, disk, dir.resolve(m.id() + "-" + disk + ".raw"), Restorer.Progress.NONE)
                .sha256();
    }

    private static String sha(byte[] b) {
        return Digest.sha256(b).hex();
    }

    @Test
    void firstBackupIsFullAndSkipsZeroChunksLaterOnesReadOnlyDirtyChunks() {
        byte[] sdaAt1 = hv.content("vm1", "sda");
        Manifest full = worker.backup("j1", job());
        assertThat(full.incremental()).isFalse();
        assertThat(full.disk("sda").orElseThrow().fullReason())
                .hasValue(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup"));
        assertThat(full.disk("sda").orElseThrow().bytesRead()).isEqualTo(MiB); // zero chunks not read
        assertThat(full.disk("sdb").orElseThrow().bytesRead()).isEqualTo(CHUNK);

        // three scattered 4 KiB writes in three different chunks, one of them on a zero region
        hv.write("vm1", "sda", 100, randomBytes(4096));
        hv.write("vm1", "sda", 3 * CHUNK + 70_000, randomBytes(4096));
        hv.write("vm1", "sda", 7 * MiB, randomBytes(4096));
        byte[] sdaAt2 = hv.content("vm1", "sda");
        Manifest inc = worker.backup("j2", job());
        assertThat(inc.incremental()).isTrue();
        assertThat(inc.parent()).contains(full.id());
        // each write dirties one 64 KiB granule of the fake's bitmap: read and stored as a patch (ADR 15)
        int granule = FakeHypervisor.GRANULARITY;
        assertThat(inc.disk("sda").orElseThrow().bytesRead()).isEqualTo(3L * granule);
        assertThat(inc.disk("sdb").orElseThrow().bytesRead()).isZero();
        assertThat(inc.disk("sda").orElseThrow().bytesNew()).isEqualTo(3L * granule);

        // every point restores to the bytes of its own moment
        assertThat(restoredSha(full, "sda")).isEqualTo(sha(sdaAt1));
        assertThat(restoredSha(inc, "sda")).isEqualTo(sha(sdaAt2));
        assertThat(restoredSha(inc, "sdb")).isEqualTo(sha(hv.content("vm1", "sdb")));
        // and the old checkpoint is gone, the new one records
        assertThat(hv.checkpoints("vm1"))
                .containsExactly(inc.disk("sda").orElseThrow().checkpoint());
    }

    @Test
    void aJobDeliveredTwiceYieldsOneRestorePoint() {
        Event e = Event.of("job-7", Instant.now(), job());
        worker.handle("tidemark.jobs.hv1", e);
        worker.handle("tidemark.jobs.hv1", e);
        assertThat(repo.manifests("vm1")).hasSize(1);
        // the outcome is announced again, so a lost first announcement is repaired
        assertThat(bus.payloads(RestorePointCreated.class))
                .hasSize(2)
                .extracting(RestorePointCreated::restorePointId)
                .containsOnly(repo.manifests("vm1").get(0).id());
    }

    @Test
    void aLostAnnouncementIsRepairedByRedeliveryNotReportedAsAFailedJob() {
        java.util.concurrent.atomic.AtomicBoolean brokerDown = new java.util.concurrent.atomic.AtomicBoolean(true);
        io.tidemark.core.bus.EventBus flaky = new io.tidemark.core.bus.EventBus() {
            @Override
            public void publish(String topic, String key, Event event) {
                if (topic.equals(io.tidemark.core.bus.Topics.RESTORE_POINTS) && brokerDown.getAndSet(false)) {
                    throw new RetriableException("injected: the broker did not acknowledge");
                }
                bus.publish(topic, key, event);
            }

            @Override
            public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
                return bus.subscribe(group, topics, handler);
            }

            @Override
            public void close() {}
        };
        try (BackupWorker w = new BackupWorker(
                "hv1", hv, repo, flaky, Clock.systemUTC(), dir.resolve("work2"), CaptureHooks.NONE, hv::open)) {
            Event e = Event.of("job-ann", Instant.now(), job());
            assertThatThrownBy(() -> w.handle("tidemark.jobs.hv1", e)).isInstanceOf(RetriableException.class);
            assertThat(bus.payloads(io.tidemark.core.event.JobFailed.class)).isEmpty();
            w.handle("tidemark.jobs.hv1", e); // the bus delivers it again
            assertThat(repo.manifests("vm1")).hasSize(1);
            assertThat(bus.payloads(RestorePointCreated.class)).hasSize(1);
            assertThat(bus.payloads(io.tidemark.core.event.JobFailed.class)).isEmpty();
        }
    }

    @Test
    void aFailedJobLosesNoChangeAndCommitsNothing() {
        worker.backup("j1", job());
        hv.write("vm1", "sda", 2 * MiB, randomBytes(4096));
        target.failNext(1, () -> new RetriableException("injected: S3 said 503"));
        assertThatThrownBy(() -> worker.backup("j2", job())).isInstanceOf(RetriableException.class);
        assertThat(repo.manifests("vm1")).hasSize(1); // no half-visible restore point

        Manifest retry = worker.backup("j2", job());
        assertThat(retry.incremental()).isTrue();
        assertThat(retry.disk("sda").orElseThrow().bytesRead())
                .isEqualTo(FakeHypervisor.GRANULARITY); // the write was not forgotten (its granule, ADR 15)
        assertThat(restoredSha(retry, "sda")).isEqualTo(sha(hv.content("vm1", "sda")));
    }

    /**
     * A snapshot given up after the last read (a guest write that waited too long for its
     * copy-before-write, ADR 17): the data read may even be exact, but no restore point is made and
     * the retry still sees every change.
     */
    @Test
    void aSnapshotGivenUpAfterItsLastReadMakesNoRestorePointAndLosesNoChange() {
        worker.backup("j1", job());
        hv.write("vm1", "sda", 2 * MiB, randomBytes(4096));
        hv.loseSnapshots("copy-before-write to the scratch image of disk sda took longer than 10 s; the guest's"
                + " write went ahead and this snapshot was abandoned; the job is retried");
        assertThatThrownBy(() -> worker.backup("j2", job()))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("this snapshot was abandoned");
        assertThat(repo.manifests("vm1")).hasSize(1);

        hv.loseSnapshots(null);
        Manifest retry = worker.backup("j2", job());
        assertThat(retry.incremental()).isTrue();
        assertThat(restoredSha(retry, "sda")).isEqualTo(sha(hv.content("vm1", "sda")));
    }

    private static SnapshotJob job(ConsistencyPolicy consistency) {
        return new SnapshotJob(
                "vm1",
                "hv1",
                "pol",
                Trigger.schedule("pol"),
                List.of(),
                Instant.now(),
                java.util.Optional.of(consistency),
                java.util.Optional.empty(),
                java.util.OptionalLong.empty());
    }

    @Test
    void aJobThatRequiresApplicationConsistencyFailsOnAHypervisorThatCannotQuiesce() {
        worker.backup("j1", job());
        hv.write("vm1", "sda", 2 * MiB, randomBytes(4096));
        assertThatThrownBy(() -> worker.backup("j2", job(ConsistencyPolicy.APPLICATION_REQUIRED)))
                .isInstanceOf(io.tidemark.core.PermanentException.class)
                .hasMessageContaining("VM 'vm1' requires application consistency")
                .hasMessageContaining("qemu-guest-agent");
        // delivered by the bus: one JobFailed with its reason, and the handler returns (no redelivery)
        worker.handle("tidemark.jobs.hv1", Event.of("j2", Instant.now(), job(ConsistencyPolicy.APPLICATION_REQUIRED)));
        assertThat(bus.payloads(io.tidemark.core.event.JobFailed.class))
                .singleElement()
                .satisfies(f -> {
                    assertThat(f.error()).contains("vm1", "qemu-guest-agent");
                    assertThat(f.reason()).contains(io.tidemark.core.event.FailureReason.CONSISTENCY_NOT_MET);
                    assertThat(f.stage()).isEqualTo("capture");
                    assertThat(f.retriable()).isFalse();
                });
        assertThat(repo.manifests("vm1")).hasSize(1);
        // the change tracking is unchanged: the next job still reads the write
        Manifest next = worker.backup("j3", job(ConsistencyPolicy.APPLICATION_PREFERRED));
        assertThat(next.incremental()).isTrue();
        assertThat(next.disk("sda").orElseThrow().bytesRead()).isEqualTo(FakeHypervisor.GRANULARITY);
        assertThat(next.consistency()).isEqualTo(ConsistencyAchieved.CRASH);
    }

    @Test
    void aLostCheckpointMeansAFullReadThatStoresNothingNew() {
        Manifest full = worker.backup("j1", job());
        hv.dropCheckpoints("vm1"); // as after QEMU was killed
        Manifest again = worker.backup("j2", job());
        DiskEntry sda = again.disk("sda").orElseThrow();
        assertThat(sda.fullReason()).isPresent();
        assertThat(sda.bytesRead()).isEqualTo(MiB);
        assertThat(sda.bytesNew()).isZero();
        assertThat(sda.index()).isEqualTo(full.disk("sda").orElseThrow().index());
    }

    @Test
    void aCorruptChunkFailsTheRestoreAndLeavesNoImage() {
        Manifest full = worker.backup("j1", job());
        Path out = dir.resolve("sda.raw");
        // corrupt one stored chunk: the restore must fail and leave no image
        String key = target.keys().stream()
                .filter(k -> k.startsWith("chunks/"))
                .findFirst()
                .orElseThrow();
        byte[] bad = target.get(key).orElseThrow();
        bad[bad.length - 1] ^= 1;
        target.delete(key);
        target.putIfAbsent(key, bad);
        assertThatThrownBy(() -> new Restorer(repo, 2).restoreDisk(full, "sda", out, Restorer.Progress.NONE))
                .hasMessageContaining(key);
        assertThat(Files.exists(out)).isFalse();
    }
}
