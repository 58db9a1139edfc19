package io.tidemark.workers;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.Quiesce;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.WriteLease;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker of one host: turns {@link SnapshotJob}s into restore points. Per job: capture all disks
 * of the VM at one instant, read what changed (or everything, when change tracking cannot be
 * trusted), store the chunks, write the indexes, then the manifest — the commit — and only then
 * drop the old checkpoint and announce {@link RestorePointCreated}. Jobs of one VM never overlap; a
 * job delivered twice produces one restore point.
 *
 * <p>Consistency: the job's policy consistency becomes the capture's {@link Quiesce}; the manifest
 * records what the capture achieved ({@code application} or {@code crash}, and why not {@code
 * application} when it was preferred). A job that requires application consistency and gets less
 * fails with {@link JobFailed}: no restore point, and the change tracking is left as it was.
 */
public final class BackupWorker implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(BackupWorker.class);

    /**
     * Chunks in flight per disk, from the read request until stored: also the bound of chunks held
     * in memory (32 × 256 KiB, plain and encoded: about 16 MiB), whatever the disk size.
     */
    static final int READS_IN_FLIGHT = 32;

    /**
     * Threads that hash, compress and store chunks. More than the cores: a store into a file
     * repository waits ~10 ms for its fsyncs (file and directory), and only many stores in flight
     * let the file system batch them into one journal commit (measured by {@code tidemark bench}:
     * 20 MiB/s of chunk writes on one thread).
     */
    static final int STORE_THREADS = 16;

    /** Jobs of one host that run at once unless configured otherwise. */
    public static final int DEFAULT_MAX_CONCURRENT_JOBS = 2;

    /** Opens a captured disk for reading. */
    @FunctionalInterface
    public interface BlockSourceOpener {
        BlockSource open(DiskExport export);
    }

    private final String host;
    private final Hypervisor hypervisor;
    private final Repository repository;
    private final EventBus bus;
    private final Clock clock;
    private final Path workRoot;
    private final CaptureHooks hooks;
    private final BlockSourceOpener opener;
    private final ExecutorService cpu;
    private final ReadLimit.Sleeper sleeper;
    private final Semaphore jobSlots;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, ReentrantLock> vmLocks = new ConcurrentHashMap<>();

    public BackupWorker(
            String host,
            Hypervisor hypervisor,
            Repository repository,
            EventBus bus,
            Clock clock,
            Path workRoot,
            CaptureHooks hooks,
            BlockSourceOpener opener) {
        this(host, hypervisor, repository, bus, clock, workRoot, hooks, opener, DEFAULT_MAX_CONCURRENT_JOBS);
    }

    /**
     * A worker that runs at most {@code maxConcurrentJobs} jobs of this host at once, however many
     * threads deliver them; jobs of one VM never overlap in any case.
     */
    public BackupWorker(
            String host,
            Hypervisor hypervisor,
            Repository repository,
            EventBus bus,
            Clock clock,
            Path workRoot,
            CaptureHooks hooks,
            BlockSourceOpener opener,
            int maxConcurrentJobs) {
        this(
                host,
                hypervisor,
                repository,
                bus,
                clock,
                workRoot,
                hooks,
                opener,
                maxConcurrentJobs,
                d -> TimeUnit.NANOSECONDS.sleep(d.toNanos()));
    }

    /** As the public constructor, with the waits of the read bandwidth limit going to {@code sleeper}. */
    BackupWorker(
            String host,
            Hypervisor hypervisor,
            Repository repository,
            EventBus bus,
            Clock clock,
            Path workRoot,
            CaptureHooks hooks,
            BlockSourceOpener opener,
            int maxConcurrentJobs,
            ReadLimit.Sleeper sleeper) {
        if (maxConcurrentJobs < 1) {
            throw new IllegalArgumentException(
                    "a worker must be allowed at least one job at a time, not " + maxConcurrentJobs);
        }
        this.jobSlots = new Semaphore(maxConcurrentJobs, true);
        this.sleeper = sleeper;
        this.host = host;
        this.hypervisor = hypervisor;
        this.repository = repository;
        this.bus = bus;
        this.clock = clock;
        this.workRoot = workRoot;
        this.hooks = hooks;
        this.opener = opener;
        int threads = Math.max(STORE_THREADS, Runtime.getRuntime().availableProcessors());
        this.cpu = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "chunk-store");
            t.setDaemon(true);
            return t;
        });
    }

    /** The bus handler for {@code tidemark.jobs.<host>}. */
    public void handle(String topic, Event event) {
        if (!(event.payload() instanceof SnapshotJob job)) {
            return;
        }
        try {
            Manifest m = backup(event.jobId(), job);
            bus.publish(
                    Topics.RESTORE_POINTS,
                    job.vm(),
                    Event.of(
                            event.jobId(),
                            clock.instant(),
                            new RestorePointCreated(
                                    m.vm(),
                                    m.id(),
                                    m.policy(),
                                    job.targets(),
                                    m.capturedAt(),
                                    m.bytesRead(),
                                    m.bytesNew())));
        } catch (TidemarkException e) {
            bus.publish(
                    Topics.JOB_STATUS,
                    job.vm(),
                    Event.of(
                            event.jobId(),
                            clock.instant(),
                            new JobFailed(job.vm(), "backup", e.getMessage(), e.retriable())));
            throw e;
        }
    }

    /**
     * Runs {@code work} while no job of {@code vm} runs, and keeps the VM's jobs waiting until it
     * returns: for operations on a VM's disks that must not overlap a capture, such as a rollback.
     */
    public <T> T exclusively(String vm, java.util.function.Supplier<T> work) {
        ReentrantLock lock = vmLocks.computeIfAbsent(vm, v -> new ReentrantLock());
        lock.lock();
        try {
            return work.get();
        } finally {
            lock.unlock();
        }
    }

    /** Runs one job; returns the restore point it committed (or had committed before). */
    public Manifest backup(String jobId, SnapshotJob job) {
        ReentrantLock lock = vmLocks.computeIfAbsent(job.vm(), v -> new ReentrantLock());
        lock.lock();
        try {
            Optional<Manifest> done = repository.findByJob(job.vm(), jobId);
            if (done.isPresent()) {
                log.info(
                        "job {} already committed restore point {}; nothing to do",
                        jobId,
                        done.get().id());
                return done.get();
            }
            // the VM's lock first: a job waiting for its VM holds no slot of the host
            acquireSlot(job.vm());
            // a backup reuses chunks the repository holds: keep garbage collection from sweeping meanwhile
            try (WriteLease lease = WriteLease.acquire(repository.target(), clock, "backup of " + job.vm())) {
                return capture(jobId, job);
            } finally {
                jobSlots.release();
            }
        } finally {
            lock.unlock();
        }
    }

    private void acquireSlot(String vm) {
        try {
            jobSlots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    "interrupted while the job of " + vm + " waited for a free slot on host " + host
                            + "; it runs again when redelivered",
                    e);
        }
    }

    private Manifest capture(String jobId, SnapshotJob job) {
        Optional<Manifest> parent = repository.latest(job.vm());
        Optional<String> since = parent.flatMap(
                p -> p.disks().stream().map(DiskEntry::checkpoint).findFirst());
        Instant started = clock.instant();
        Optional<String> forcedFull = parent.isPresent() ? forcedFull(job, started) : Optional.empty();
        ReadLimit readLimit = ReadLimit.of(job.readBytesPerSecond(), clock, sleeper);
        String id = RestorePointIds.next(started, random);
        String checkpoint = "tm-" + id;
        Path workDir = workRoot.resolve(Integer.toHexString(id.hashCode()));
        createDirectories(workDir);
        try {
            String hooked = hooks.freeze(job.vm());
            Quiesce quiesce = Quiesce.fromPolicy(job.consistency());
            Capture capture;
            try {
                capture = hypervisor.capture(new CaptureRequest(job.vm(), since, checkpoint, workDir, quiesce));
            } finally {
                hooks.thaw(job.vm());
            }
            try (capture) {
                CaptureConsistency achieved = capture.consistency();
                if (quiesce == Quiesce.REQUIRED && !achieved.isApplication()) {
                    throw new PermanentException("VM '" + job.vm() + "' requires application consistency (policy "
                            + job.policy() + "), but " + hypervisor + " captured it "
                            + achieved.reason().orElse("crash-consistent")
                            + "; install and start qemu-guest-agent in the guest, or relax the policy to"
                            + " consistency: application-preferred");
                }
                String consistency = achieved.isApplication() ? CaptureConsistency.APPLICATION : hooked;
                hooks.onCaptured(job.vm(), capture.capturedAt());
                bus.publish(
                        Topics.JOB_STATUS,
                        job.vm(),
                        Event.of(jobId, clock.instant(), new SnapshotCaptured(job.vm(), capture.capturedAt())));
                List<DiskEntry> disks = new ArrayList<>();
                for (DiskExport export : capture.disks()) {
                    disks.add(readDisk(export, parent, checkpoint, forcedFull, readLimit));
                }
                Manifest m = new Manifest(
                        FormatConstants.REPOSITORY_FORMAT_VERSION,
                        id,
                        job.vm(),
                        host,
                        jobId,
                        capture.capturedAt(),
                        clock.instant(),
                        consistency,
                        job.trigger(),
                        job.policy(),
                        parent.map(Manifest::id),
                        disks,
                        quiesce == Quiesce.NONE ? Optional.empty() : achieved.reason());
                repository.commit(m);
                capture.commit();
                log.info(
                        "restore point {} of {}: {} ({} of {} bytes read, {} new) in {} ms",
                        m.id(),
                        m.vm(),
                        m.incremental() ? "incremental" : "full",
                        m.bytesRead(),
                        m.sizeBytes(),
                        m.bytesNew(),
                        clock.millis() - started.toEpochMilli());
                return m;
            }
        } finally {
            deleteRecursively(workDir);
        }
    }

    /**
     * The policy's {@code full-every}: why this job must read every disk in full although change
     * tracking works, or empty. It still stores only the chunks the repository lacks.
     */
    private Optional<String> forcedFull(SnapshotJob job, Instant now) {
        if (job.fullEvery().isEmpty()) {
            return Optional.empty();
        }
        Duration every = job.fullEvery().get();
        Optional<Manifest> lastFull = repository.manifests(job.vm()).stream()
                .filter(m -> m.disks().stream().allMatch(d -> d.fullReason().isPresent()))
                .reduce((a, b) -> b);
        if (lastFull.isEmpty()) {
            return Optional.of("policy '" + job.policy() + "' full-every " + every + ": no full restore point of "
                    + job.vm() + " yet");
        }
        Duration age = Duration.between(lastFull.get().capturedAt(), now);
        if (age.compareTo(every) < 0) {
            return Optional.empty();
        }
        return Optional.of("policy '" + job.policy() + "' full-every " + every + ": the newest full restore point "
                + lastFull.get().id() + " is " + age + " old");
    }

    private DiskEntry readDisk(
            DiskExport export,
            Optional<Manifest> parent,
            String checkpoint,
            Optional<String> forcedFull,
            ReadLimit readLimit) {
        Optional<IndexRoot> parentRoot = parent.flatMap(p -> p.disk(export.disk()))
                .map(d -> repository.root(Digest.fromHex(d.index())))
                .filter(r -> r.diskSize() == export.sizeBytes());
        Optional<String> fullReason = export.fullReason().or(() -> forcedFull);
        if (export.incremental() && parentRoot.isEmpty()) {
            fullReason = Optional.of("the parent restore point has no index of this disk at this size");
        }
        DiskIndexBuilder index =
                repository.newIndex(export.sizeBytes(), fullReason.isEmpty() ? parentRoot : Optional.empty());
        if (fullReason.isEmpty() && !index.hasParent()) {
            fullReason = Optional.of("the parent index has another geometry");
        }
        Optional<String> dirty = fullReason.isEmpty() ? export.dirtyBitmapContext() : Optional.empty();
        DiskBackup.Outcome out;
        try (BlockSource source = opener.open(export)) {
            out = new DiskBackup(repository, cpu, READS_IN_FLIGHT, readLimit).run(source, dirty, index);
        }
        return new DiskEntry(
                export.disk(),
                export.sizeBytes(),
                repository.config().chunkSize(),
                out.index().hex(),
                checkpoint,
                fullReason,
                out.bytesRead(),
                out.bytesNew());
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new PermanentException("cannot create the work directory " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            log.warn("could not remove the work directory {}: {}", dir, e.getMessage());
        }
    }

    @Override
    public void close() {
        cpu.shutdownNow();
    }
}
