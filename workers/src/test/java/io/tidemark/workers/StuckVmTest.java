package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One VM whose QEMU hangs (its capture never returns, deaf to interrupts, like a QMP read from a
 * stopped process) costs only its own jobs; every job ends within its deadline in a restore point or
 * one {@link JobFailed} with a reason; retries are bounded; stale jobs are not run; close() drains.
 */
class StuckVmTest {

    private static final int MiB = 1 << 20;
    private static final Duration DEADLINE = Duration.ofSeconds(3);
    /** Scheduling slack on a loaded machine, on top of a bound under test. */
    private static final Duration SLACK = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private final FakeHypervisor fake = new FakeHypervisor(Clock.systemUTC());
    private final RecordingEventBus bus = new RecordingEventBus();
    private final CountDownLatch qemuResumed = new CountDownLatch(1);
    private final CountDownLatch stuckEntered = new CountDownLatch(1);
    private final CountDownLatch stuckCaptureClosed = new CountDownLatch(1);
    private final Map<String, AtomicInteger> captures = new ConcurrentHashMap<>();
    /** Per VM, how many of its next captures fail with a retriable error. */
    private final Map<String, AtomicInteger> failNext = new ConcurrentHashMap<>();

    private Repository repo;
    private BackupWorker worker;

    /** Captures of VM "stuck" hang until {@link #qemuResumed}; "flaky" fails as told by {@link #failNext}. */
    private final Hypervisor faulty = new Hypervisor() {
        @Override
        public List<VmInfo> list() {
            return fake.list();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            captures.computeIfAbsent(request.vm(), v -> new AtomicInteger()).incrementAndGet();
            if (failNext.getOrDefault(request.vm(), new AtomicInteger()).getAndDecrement() > 0) {
                throw new RetriableException("injected: QMP of '" + request.vm() + "' answered GenericError");
            }
            if (request.vm().equals("hung")) { // like a QMP command awaiting its reply: interruptible
                try {
                    if (!qemuResumed.await(60, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("the test never resumed QEMU");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted while awaiting QMP of 'hung'", e);
                }
                return fake.capture(request);
            }
            if (request.vm().equals("stuck")) {
                stuckEntered.countDown();
                awaitUninterruptibly(qemuResumed);
                Capture c = fake.capture(request);
                return new Capture() {
                    @Override
                    public Instant capturedAt() {
                        return c.capturedAt();
                    }

                    @Override
                    public CaptureConsistency consistency() {
                        return c.consistency();
                    }

                    @Override
                    public List<DiskExport> disks() {
                        return c.disks();
                    }

                    @Override
                    public void commit() {
                        c.commit();
                    }

                    @Override
                    public void close() {
                        c.close();
                        stuckCaptureClosed.countDown();
                    }
                };
            }
            return fake.capture(request);
        }

        @Override
        public void close() {}
    };

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                if (latch.await(60, TimeUnit.SECONDS)) {
                    break;
                }
                throw new IllegalStateException("the test never resumed QEMU");
            } catch (InterruptedException e) {
                interrupted = true; // a thread blocked in a socket read does not notice either
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @BeforeEach
    void setUp() {
        repo = Repository.openOrInit(new InMemoryObjectTarget("primary"), RepositoryConfig.defaults());
        for (String vm : List.of("stuck", "hung", "ok", "flaky")) {
            fake.addVm(vm, Map.of("sda", MiB));
            fake.write(vm, "sda", 0, new byte[] {1, 2, 3});
        }
    }

    @AfterEach
    void tearDown() {
        qemuResumed.countDown();
        if (worker != null) {
            worker.close();
        }
    }

    private BackupWorker worker(int slots, JobBounds bounds) {
        worker = new BackupWorker(
                "hv1",
                faulty,
                repo,
                bus,
                Clock.systemUTC(),
                dir.resolve("work"),
                CaptureHooks.NONE,
                fake::open,
                BackupWorker.Limits.DEFAULTS.withMaxConcurrentJobs(slots).withBounds(bounds));
        return worker;
    }

    private static JobBounds bounds(int attempts) {
        return new JobBounds(
                DEADLINE,
                Duration.ofSeconds(1),
                attempts,
                Duration.ofMillis(20),
                Duration.ofSeconds(1),
                Duration.ofMillis(500),
                Duration.ofSeconds(1));
    }

    private static Event job(String vm, String jobId) {
        return Event.of(
                jobId, Instant.now(), new SnapshotJob(vm, "hv1", "p", Trigger.schedule("p"), List.of(), Instant.now()));
    }

    private List<JobFailed> failures(String vm) {
        return bus.payloads(JobFailed.class).stream()
                .filter(f -> f.vm().equals(vm))
                .toList();
    }

    private long points(String vm) {
        return bus.payloads(RestorePointCreated.class).stream()
                .filter(p -> p.vm().equals(vm))
                .count();
    }

    /** Runs handle() on a thread of its own, as a bus lane would; returns its thread. */
    private Thread deliver(BackupWorker w, Event e, AtomicReference<Throwable> thrown) {
        Thread t = new Thread(() -> {
            try {
                w.handle("tidemark.jobs.hv1", e);
            } catch (RuntimeException ex) {
                thrown.set(ex);
            }
        });
        t.start();
        return t;
    }

    @Test
    void runningNamesTheJobItsStageAndSinceWhenWhileQemuHangsAndForgetsItOnceItEnded() throws Exception {
        BackupWorker w = worker(1, bounds(1));
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread stuck = deliver(w, job("stuck", "stuck-1"), thrown);
        assertThat(stuckEntered.await(30, TimeUnit.SECONDS)).isTrue();

        assertThat(w.running()).singleElement().satisfies(j -> {
            assertThat(j.jobId()).isEqualTo("stuck-1");
            assertThat(j.vm()).isEqualTo("stuck");
            assertThat(j.stage()).isEqualTo("capture");
            assertThat(j.stageNumber()).isEqualTo(3);
            assertThat(j.stages()).isEqualTo(5);
            assertThat(j.stageSince()).isAfterOrEqualTo(j.startedAt());
        });

        stuck.join(DEADLINE.plus(SLACK).toMillis());
        assertThat(w.running()).isEmpty(); // ended at its deadline, though QEMU still hangs
    }

    @Test
    void runningCountsTheBytesTheExportHasReadOfThoseItWillRead() throws Exception {
        fake.addVm("big", Map.of("sda", MiB));
        fake.write("big", "sda", 0, new byte[] {1});
        fake.write("big", "sda", MiB / 2, new byte[] {2}); // two allocated chunks
        CountDownLatch readsResume = new CountDownLatch(1);
        worker = new BackupWorker(
                "hv1",
                faulty,
                repo,
                bus,
                Clock.systemUTC(),
                dir.resolve("work"),
                CaptureHooks.NONE,
                export -> {
                    BlockSource real = fake.open(export);
                    return new BlockSource() { // the first chunk reads at once, the others wait
                        @Override
                        public long size() {
                            return real.size();
                        }

                        @Override
                        public List<io.tidemark.workers.nbd.Extent> extents(String context, long offset, long length) {
                            return real.extents(context, offset, length);
                        }

                        @Override
                        public java.util.concurrent.CompletableFuture<byte[]> read(long offset, int length) {
                            if (offset == 0) {
                                return real.read(offset, length);
                            }
                            return java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                                awaitUninterruptibly(readsResume);
                                return real.read(offset, length).join();
                            });
                        }

                        @Override
                        public void close() {
                            real.close();
                        }
                    };
                },
                BackupWorker.Limits.DEFAULTS
                        .withMaxConcurrentJobs(1)
                        .withBounds(new JobBounds(
                                Duration.ofSeconds(60),
                                Duration.ofSeconds(1),
                                1,
                                Duration.ofMillis(20),
                                Duration.ofSeconds(1),
                                Duration.ofMillis(500),
                                Duration.ofSeconds(1))));
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread job = deliver(worker, job("big", "big-1"), thrown);
        long chunk = repo.config().chunkSize();

        await().atMost(Duration.ofSeconds(30))
                .until(() -> worker.running().stream().anyMatch(j -> j.bytesRead() == chunk));
        assertThat(worker.running()).singleElement().satisfies(j -> {
            assertThat(j.stage()).isEqualTo("export");
            assertThat(j.disk()).isEqualTo(1);
            assertThat(j.disks()).isEqualTo(1);
            assertThat(j.bytesToRead()).isEqualTo(2 * chunk);
        });

        readsResume.countDown();
        job.join(SLACK.toMillis());
        assertThat(points("big")).isEqualTo(1);
        assertThat(worker.running()).isEmpty();
    }

    @Test
    void theStuckJobEndsAtItsDeadlineAndFreesTheOnlyHostSlotWhileQemuStillHangs() throws Exception {
        BackupWorker w = worker(1, bounds(3)); // one host slot: the stuck job must not keep it
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        long t0 = System.nanoTime();
        Thread stuck = deliver(w, job("stuck", "stuck-1"), thrown);
        assertThat(stuckEntered.await(30, TimeUnit.SECONDS)).isTrue();

        stuck.join(DEADLINE.plus(SLACK).toMillis());
        assertThat(stuck.isAlive()).as("the stuck job's handler returned").isFalse();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(DEADLINE.plus(SLACK));
        assertThat(thrown.get()).isNull();
        assertThat(failures("stuck")).singleElement().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.DEADLINE_EXCEEDED);
            assertThat(f.stage()).isEqualTo("capture");
            assertThat(f.retriable()).isTrue();
            assertThat(f.error()).contains("stuck-1", "job deadline PT3S", "may be stopped or hung");
        });

        // QEMU of "stuck" still hangs (its capture thread is still blocked), yet the one slot is free
        for (int i = 1; i <= 3; i++) {
            w.handle("tidemark.jobs.hv1", job("ok", "ok-" + i));
        }
        assertThat(points("ok")).isEqualTo(3);
        assertThat(failures("ok")).isEmpty();
        assertThat(qemuResumed.getCount()).as("QEMU of 'stuck' still hangs").isEqualTo(1);
        assertThat(stuckCaptureClosed.getCount()).isEqualTo(1);
    }

    @Test
    void theNextJobOfAStuckVmEndsVmBusyAtOnceAndTheAbandonedJobNeverCommits() throws Exception {
        BackupWorker w = worker(2, bounds(3));
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        deliver(w, job("stuck", "stuck-1"), thrown).join(DEADLINE.plus(SLACK).toMillis());
        assertThat(failures("stuck")).hasSize(1);

        long t0 = System.nanoTime();
        w.handle("tidemark.jobs.hv1", job("stuck", "stuck-2"));
        assertThat(Duration.ofNanos(System.nanoTime() - t0))
                .as("no waiting for a VM whose job was abandoned")
                .isLessThan(Duration.ofSeconds(1).plus(SLACK));
        assertThat(failures("stuck")).hasSize(2).last().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.VM_BUSY);
            assertThat(f.stage()).isEqualTo("queued");
            assertThat(f.error()).contains("stuck-1 has run since", "abandoned", "may be stopped or hung");
        });
        assertThat(captures.get("stuck")).as("no second capture of a hung QEMU").hasValue(1);
        // a rollback does not wait for ever behind it either
        assertThatThrownBy(() -> w.exclusively("stuck", () -> "rolled back"))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("stuck-1 has run since")
                .hasMessageContaining("abandoned");

        // QEMU resumes: the abandoned capture returns late, is closed unused, and commits nothing
        qemuResumed.countDown();
        assertThat(stuckCaptureClosed.await(30, TimeUnit.SECONDS)).isTrue();
        await().atMost(SLACK).untilAsserted(() -> {
            w.handle("tidemark.jobs.hv1", job("stuck", "stuck-3-" + System.nanoTime()));
            assertThat(points("stuck")).isEqualTo(1);
        });
        assertThat(repo.manifests("stuck")).singleElement().satisfies(m -> assertThat(m.jobId())
                .startsWith("stuck-3-"));
        assertThat(thrown.get()).isNull();
    }

    @Test
    void onceAVmsJobHungTillItsDeadlineItsNextCaptureGetsOnlyTheBusyWaitThenItRecovers() throws Exception {
        BackupWorker w = worker(2, bounds(3));
        long t0 = System.nanoTime();
        w.handle("tidemark.jobs.hv1", job("hung", "hung-1"));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(DEADLINE.plus(SLACK));
        assertThat(failures("hung")).singleElement().satisfies(f -> assertThat(f.reason())
                .contains(FailureReason.DEADLINE_EXCEEDED));

        // the abandoned capture gave up on the interrupt, so the VM's lock is free: the next job tries
        // QEMU again, but waits only vmBusyWait (1 s) for it, not the 3 s deadline
        long t1 = System.nanoTime();
        w.handle("tidemark.jobs.hv1", job("hung", "hung-2"));
        assertThat(Duration.ofNanos(System.nanoTime() - t1)).isLessThan(DEADLINE);
        assertThat(captures.get("hung")).hasValue(2);
        assertThat(failures("hung")).hasSize(2).last().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.VM_BUSY);
            assertThat(f.stage()).isEqualTo("capture");
            assertThat(f.error()).contains("has not answered since", "hung-1", "may be stopped or hung");
        });

        qemuResumed.countDown(); // kill -CONT: once the interrupted capture let go of the VM, jobs commit again
        await().atMost(SLACK).untilAsserted(() -> {
            w.handle("tidemark.jobs.hv1", job("hung", "hung-3-" + System.nanoTime()));
            assertThat(points("hung")).isEqualTo(1);
        });
    }

    @Test
    void aJobThatCouldNotStartBeforeItsNotAfterEndsExpiredWithoutACapture() {
        BackupWorker w = worker(2, bounds(3));
        Instant scheduled = Instant.now().minusSeconds(60);
        SnapshotJob stale = new SnapshotJob("ok", "hv1", "p", Trigger.schedule("p"), List.of(), scheduled)
                .validUntil(scheduled.plusSeconds(15));
        w.handle("tidemark.jobs.hv1", Event.of("ok-stale", Instant.now(), stale));

        assertThat(failures("ok")).singleElement().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.EXPIRED);
            assertThat(f.stage()).isEqualTo("queued");
            assertThat(f.error())
                    .contains(scheduled.toString(), scheduled.plusSeconds(15).toString(), "next firing");
        });
        assertThat(captures).doesNotContainKey("ok");
        assertThat(repo.manifests("ok")).isEmpty();

        // a job written before notAfter existed never expires, however old
        SnapshotJob old = new SnapshotJob(
                "ok",
                "hv1",
                "p",
                Trigger.schedule("p"),
                List.of(),
                Instant.parse("2020-01-01T00:00:00Z"),
                Optional.empty(),
                Optional.empty(),
                OptionalLong.empty());
        w.handle("tidemark.jobs.hv1", Event.of("ok-old", Instant.now(), old));
        assertThat(points("ok")).isEqualTo(1);
    }

    @Test
    void aRetriableFailureIsTriedAFewTimesThenFailsOnceAndTheHandlerReturns() {
        BackupWorker w = worker(2, bounds(3));
        failNext.put("flaky", new AtomicInteger(Integer.MAX_VALUE));

        w.handle("tidemark.jobs.hv1", job("flaky", "flaky-1")); // returns: the bus moves on

        assertThat(captures.get("flaky")).hasValue(3);
        assertThat(failures("flaky")).singleElement().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.CAPTURE_FAILED);
            assertThat(f.stage()).isEqualTo("capture");
            assertThat(f.retriable()).isTrue();
            assertThat(f.error()).contains("failed 3 time(s)", "GenericError", "next firing");
        });
        assertThat(points("flaky")).isZero();

        // one fault, then it works: a restore point and no JobFailed
        failNext.put("flaky", new AtomicInteger(1));
        w.handle("tidemark.jobs.hv1", job("flaky", "flaky-2"));
        assertThat(points("flaky")).isEqualTo(1);
        assertThat(failures("flaky")).hasSize(1);
    }

    @Test
    void aPermanentFailureFailsOnceWithItsReasonAndTheHandlerReturns() {
        BackupWorker w = worker(2, bounds(3));
        w.handle("tidemark.jobs.hv1", job("gone", "gone-1"));
        assertThat(captures.get("gone")).hasValue(1);
        assertThat(failures("gone")).singleElement().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.VM_NOT_FOUND);
            assertThat(f.retriable()).isFalse();
        });
    }

    @Test
    void closeCancelsAStuckJobAfterTheDrainTimeRefusesNewJobsAndLeavesNoWorkDirectory() throws Exception {
        BackupWorker w = worker(2, bounds(3).withDeadline(Duration.ofMinutes(5)));
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread stuck = deliver(w, job("stuck", "stuck-1"), thrown);
        assertThat(stuckEntered.await(30, TimeUnit.SECONDS)).isTrue();
        assertThat(workDirs()).hasSize(1);

        long t0 = System.nanoTime();
        w.close();
        stuck.join(SLACK.toMillis());
        assertThat(stuck.isAlive()).isFalse();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(SLACK);
        // not acknowledged: delivered again after the restart
        assertThat(thrown.get()).isInstanceOf(RetriableException.class);
        assertThat(failures("stuck")).singleElement().satisfies(f -> {
            assertThat(f.reason()).contains(FailureReason.ENGINE_STOPPING);
            assertThat(f.retriable()).isTrue();
        });
        assertThat(workDirs()).isEmpty();

        assertThatThrownBy(() -> w.handle("tidemark.jobs.hv1", job("ok", "ok-late")))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("delivered again after the restart");
        assertThat(captures).doesNotContainKey("ok");
    }

    private List<Path> workDirs() throws IOException {
        Path root = dir.resolve("work");
        if (!Files.exists(root)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(root)) {
            return s.toList();
        }
    }
}
