package io.tidemark.workers;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.CheckpointNames;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.VmDefinition;
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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker of one host: turns {@link SnapshotJob}s into restore points. Per job: capture all disks
 * of the VM at one instant, read what changed (or everything, when change tracking cannot be
 * trusted), store the chunks, write the indexes, then the manifest — the commit — and only then
 * drop the old checkpoint and announce {@link RestorePointCreated}. Jobs of one VM never overlap; a
 * job delivered twice produces one restore point.
 *
 * <p>Bounded per VM ({@link JobBounds}, docs/design.md §4): {@link #handle} runs each job on a
 * thread of its own and waits for it up to the job deadline. Every delivered job ends, within the
 * deadline (plus the short grace of a manifest write that had begun), in a restore point or in
 * exactly one {@link JobFailed} with a {@link FailureReason}: a job past its deadline is cancelled
 * (interrupted, its capture closed, its host slot released) and never commits afterwards; the next
 * job of a VM whose job is stuck fails at once ({@code VM_BUSY}); a job that could not start before
 * its {@code notAfter} is not run ({@code EXPIRED}); retriable errors are retried inside the job
 * with backoff, a bounded number of times. The handler then returns normally, so the bus moves on:
 * a stuck VM holds only its own jobs, never a host slot beyond its deadline.
 *
 * <p>Consistency: the job's policy consistency becomes the capture's {@link ConsistencyPolicy}; the manifest
 * records what the capture achieved ({@code application} or {@code crash}, and why not {@code
 * application} when it was preferred). A job that requires application consistency and gets less
 * fails with {@link JobFailed}: no restore point, and the change tracking is left as it was.
 *
 * <p>{@link #close()} (SIGTERM) drains: new deliveries are refused (not acknowledged, so delivered
 * again after the restart), running jobs get {@link JobBounds#drain()} to finish, then they are
 * cancelled like a job past its deadline, and their work directories are removed.
 */
public final class BackupWorker implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(BackupWorker.class);

    /**
     * The default of {@code backupMemory}: the chunk buffers one disk's read may hold, plain and
     * encoded (8 MiB: 16 chunks of 256 KiB in flight), whatever the disk size. The plain buffers are
     * reused for the whole read, so they stay in the heap's old generation while it runs.
     */
    public static final long DEFAULT_BACKUP_MEMORY = 8L << 20;

    /**
     * The default of {@code backupNice}: the nice value of a backup's reading and storing threads
     * (10, as {@code nice} gives a command by default), so the VMs' threads win the CPU when the host
     * is contended; 0 runs backups at the normal priority.
     */
    public static final int DEFAULT_BACKUP_NICE = 10;

    /** Chunks in flight per disk at the default memory and chunk size. */
    static final int READS_IN_FLIGHT = chunksInFlight(DEFAULT_BACKUP_MEMORY, 256 << 10);

    /**
     * Chunks one disk's read keeps in flight with {@code backupMemory} bytes: each holds its plain
     * buffer (reused) and, while it is stored, its encoded object; at least 2, at most 1024.
     */
    static int chunksInFlight(long backupMemory, int chunkSize) {
        return (int) Math.max(2, Math.min(1024, backupMemory / (2L * chunkSize)));
    }

    /**
     * The most a chunk's patch may hold (ADR 15): a quarter of the chunk. So a patched chunk costs a
     * restore at most 1.25× its bytes, in two objects, and a chunk changed further is stored whole.
     */
    static int maxPatchBytes(int chunkSize) {
        return chunkSize / 4;
    }

    /**
     * Threads that hash, compress and store chunks. More than the cores: a store into a file
     * repository waits ~10 ms for its fsyncs (file and directory), and only many stores in flight
     * let the file system batch them into one journal commit (measured by {@code tidemark bench}:
     * 20 MiB/s of chunk writes on one thread).
     */
    static final int STORE_THREADS = 16;

    /** How long a job waits for its VM when the VM's previous job was abandoned and may be letting go. */
    static final Duration ABANDONED_LET_GO = Duration.ofSeconds(1);

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
    /** Names this repository's checkpoints, so another repository protecting the VM keeps its own. */
    private final String checkpointOwner;

    private final EventBus bus;
    private final Clock clock;
    private final Path workRoot;
    private final CaptureHooks hooks;
    private final BlockSourceOpener opener;
    private final ExecutorService cpu;
    /** Chunks in flight per disk: what {@code backupMemory} allows. */
    private final int readsInFlight;

    private final int backupNice;

    private final Sleeper sleeper;
    private final HostReadLimit hostReadLimit;
    private final Semaphore jobSlots;
    private final JobBounds bounds;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, ReentrantLock> vmLocks = new ConcurrentHashMap<>();
    /** What holds each VM's lock now: a job, or an exclusive operation such as a rollback. */
    private final Map<String, RunningJob> vmHolders = new ConcurrentHashMap<>();
    /** Jobs started by {@link #handle} whose handler still waits for them. */
    private final Set<RunningJob> handled = ConcurrentHashMap.newKeySet();
    /** Jobs started by {@link #handle} whose thread has not ended (including abandoned ones). */
    private final Set<RunningJob> alive = ConcurrentHashMap.newKeySet();
    /**
     * VMs whose last job was abandoned at its deadline while QEMU captured or exported it, and since
     * when: their next captures get {@link JobBounds#vmBusyWait()}, not the whole deadline.
     */
    private final Map<String, Unresponsive> unresponsive = new ConcurrentHashMap<>();

    private record Unresponsive(String jobId, Instant since) {}

    private volatile boolean closing;

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
                Limits.DEFAULTS.withMaxConcurrentJobs(maxConcurrentJobs));
    }

    /** A worker within {@code limits}: jobs at once, their bounds, read limits and memory. */
    public BackupWorker(
            String host,
            Hypervisor hypervisor,
            Repository repository,
            EventBus bus,
            Clock clock,
            Path workRoot,
            CaptureHooks hooks,
            BlockSourceOpener opener,
            Limits limits) {
        this.jobSlots = new Semaphore(limits.maxConcurrentJobs(), true);
        this.bounds = limits.bounds();
        this.sleeper = limits.sleeper();
        this.hostReadLimit = limits.hostReadLimit();
        this.host = host;
        this.hypervisor = hypervisor;
        this.repository = repository;
        this.checkpointOwner = CheckpointNames.ownerOf(repository.describe());
        this.bus = bus;
        this.clock = clock;
        this.workRoot = workRoot;
        this.hooks = hooks;
        this.opener = opener;
        this.readsInFlight =
                chunksInFlight(limits.backupMemory(), repository.config().chunkSize());
        this.backupNice = limits.backupNice();
        int threads = Math.max(STORE_THREADS, Runtime.getRuntime().availableProcessors());
        ThreadFactory store = DaemonThreads.named("chunk-store");
        this.cpu = Executors.newFixedThreadPool(threads, r -> store.newThread(Niceness.lowering(backupNice, r)));
    }

    /**
     * How much a worker does at once and within what: jobs of this host at once, each job's deadline,
     * retries and drain time ({@code bounds}), the host's aggregate read limit shared fairly by the
     * jobs running at once (on top of each job's own), the memory each disk's read may hold for its
     * chunks in flight ({@code backupMemory} of the engine config: it bounds the backup's heap
     * whatever the disk size; fewer chunks in flight read more slowly), the nice value of a backup's
     * reading and storing threads once its capture is done ({@code backupNice}: the VMs run first on a
     * contended host; 0 = normal priority), and what the read limits' waits go to ({@code sleeper}: a
     * fake clock in tests).
     */
    public record Limits(
            int maxConcurrentJobs,
            JobBounds bounds,
            HostReadLimit hostReadLimit,
            long backupMemory,
            int backupNice,
            Sleeper sleeper) {

        /**
         * Two jobs at once, default bounds, no host read limit, {@link #DEFAULT_BACKUP_MEMORY}, {@link
         * #DEFAULT_BACKUP_NICE}.
         */
        public static final Limits DEFAULTS = new Limits(
                DEFAULT_MAX_CONCURRENT_JOBS,
                JobBounds.defaults(),
                HostReadLimit.NONE,
                DEFAULT_BACKUP_MEMORY,
                DEFAULT_BACKUP_NICE,
                Sleeper.SYSTEM);

        public Limits {
            if (maxConcurrentJobs < 1) {
                throw new IllegalArgumentException(
                        "a worker must be allowed at least one job at a time, not " + maxConcurrentJobs);
            }
            if (backupMemory < 1) {
                throw new IllegalArgumentException("backupMemory must be positive, not " + backupMemory);
            }
            if (backupNice < Niceness.MIN || backupNice > Niceness.MAX) {
                throw new IllegalArgumentException("backupNice must be between 0 and 19, not " + backupNice);
            }
            Objects.requireNonNull(bounds, "bounds");
            Objects.requireNonNull(hostReadLimit, "hostReadLimit");
            Objects.requireNonNull(sleeper, "sleeper");
        }

        public Limits withMaxConcurrentJobs(int n) {
            return new Limits(n, bounds, hostReadLimit, backupMemory, backupNice, sleeper);
        }

        public Limits withBounds(JobBounds b) {
            return new Limits(maxConcurrentJobs, b, hostReadLimit, backupMemory, backupNice, sleeper);
        }

        public Limits withHostReadLimit(HostReadLimit h) {
            return new Limits(maxConcurrentJobs, bounds, h, backupMemory, backupNice, sleeper);
        }

        public Limits withBackupMemory(long bytes) {
            return new Limits(maxConcurrentJobs, bounds, hostReadLimit, bytes, backupNice, sleeper);
        }

        /** The nice value (0–19) of a backup's reading and storing threads; 0 for the normal priority. */
        public Limits withBackupNice(int nice) {
            return new Limits(maxConcurrentJobs, bounds, hostReadLimit, backupMemory, nice, sleeper);
        }

        public Limits withSleeper(Sleeper s) {
            return new Limits(maxConcurrentJobs, bounds, hostReadLimit, backupMemory, backupNice, s);
        }
    }

    /**
     * The jobs this worker runs now (handed to it and not yet ended), with their stage: read from
     * memory, never from a VM, so a status page may call it at any time.
     */
    public List<JobProgress> running() {
        return handled.stream()
                .map(RunningJob::progress)
                .sorted(java.util.Comparator.comparing(JobProgress::startedAt))
                .toList();
    }

    /**
     * The bus handler for {@code tidemark.jobs.<host>}: runs the job and returns once it ended, in a
     * restore point ({@link RestorePointCreated}) or a {@link JobFailed}, within the job deadline.
     *
     * @throws RetriableException if the worker is stopping (the job is delivered again after the
     *     restart), or an outcome could not be published
     */
    public void handle(String topic, Event event) {
        if (!(event.payload() instanceof SnapshotJob job)) {
            return;
        }
        String jobId = event.jobId();
        if (closing) {
            throw new RetriableException("the worker of host " + host + " is stopping: job " + jobId + " of VM '"
                    + job.vm() + "' was not started and is delivered again after the restart");
        }
        Instant started = clock.instant();
        Instant deadline = started.plus(bounds.deadline());
        RunningJob rj = new RunningJob(jobId, job.vm(), started);
        handled.add(rj);
        alive.add(rj);
        Thread thread = new Thread(() -> runHandled(rj, job, deadline), "job-" + job.vm());
        thread.setDaemon(true);
        rj.runsOn(thread);
        Manifest m;
        try {
            thread.start();
            awaitCaptureOfUnresponsiveVm(rj, deadline);
            m = await(rj, job, deadline);
        } catch (JobEndedException e) {
            fail(jobId, job, e.stage(), e.reason(), e.getMessage(), e.mayRunAgain());
            if (e.reason() == FailureReason.ENGINE_STOPPING) {
                throw new RetriableException(e.getMessage(), e);
            }
            return;
        } catch (TidemarkException e) {
            RunningJob.Stage stage = rj.stage();
            fail(jobId, job, stage, RunningJob.classify(e, stage), e.getMessage(), e.retriable());
            return;
        } finally {
            handled.remove(rj);
        }
        unresponsive.remove(job.vm());
        // a failed announcement propagates: the bus delivers the job again, which finds its point and announces it
        announce(jobId, job, m);
    }

    /**
     * A VM whose last job hung in QEMU gets {@link JobBounds#vmBusyWait()} for its capture, not the
     * whole deadline: if QEMU still does not answer, the job ends {@code VM_BUSY} soon, so a hung VM
     * costs its lane and a host slot for that long per firing, not for the deadline.
     */
    private void awaitCaptureOfUnresponsiveVm(RunningJob rj, Instant deadline) {
        Unresponsive since = unresponsive.get(rj.vm);
        if (since == null) {
            return;
        }
        long wait = Math.min(bounds.vmBusyWait().toMillis(), remainingMillis(deadline));
        try {
            CompletableFuture.anyOf(rj.pastCapture, rj.outcome).get(wait, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            if (rj.stage() != RunningJob.Stage.CAPTURE) {
                return; // it waits for a host slot or the lease: not the VM's fault
            }
            String why = "VM '" + rj.vm + "' has not answered since " + since.since() + " (job " + since.jobId()
                    + " exceeded its deadline there), and the capture of job " + rj.jobId + " did not return within "
                    + bounds.vmBusyWait() + " either; QEMU of '" + rj.vm + "' may be stopped or hung (check its"
                    + " process state and QMP socket); the job was cancelled, the next firing tries again";
            if (cancel(rj, new JobEndedException(FailureReason.VM_BUSY, RunningJob.Stage.CAPTURE, why, true))) {
                log.warn("{}", why);
            }
        } catch (ExecutionException e) {
            // the outcome: await() reports it
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Waits for the job's outcome until {@code deadline}; past it, abandons the job (unless it is
     * writing its manifest: then a short grace) and throws why.
     */
    private Manifest await(RunningJob rj, SnapshotJob job, Instant deadline) {
        try {
            return rj.outcome.get(remainingMillis(deadline), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            RunningJob.Stage stage = rj.stage();
            String why = "the job " + rj.jobId + " of VM '" + rj.vm + "' did not finish within the job deadline "
                    + bounds.deadline() + " (" + rj.where() + "); it was cancelled and commits nothing; "
                    + switch (stage) {
                        case CAPTURE, EXPORT ->
                            "QEMU of '" + rj.vm + "' may be stopped or hung, or its disks too" + " slow to read";
                        case QUEUED ->
                            "it waited for a host slot all that time (every one of the host's"
                                    + " maxConcurrentJobs was busy)";
                        case PREPARE, COMMIT -> "the primary repository may be too slow";
                    }
                    + "; the next firing tries again";
            if (cancel(rj, new JobEndedException(FailureReason.DEADLINE_EXCEEDED, stage, why, true))) {
                log.warn("{}", why);
                if (stage == RunningJob.Stage.CAPTURE || stage == RunningJob.Stage.EXPORT) {
                    unresponsive.putIfAbsent(rj.vm, new Unresponsive(rj.jobId, rj.stageSince()));
                }
            }
            return outcomeWithin(rj, job, bounds.commitGrace());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            String why = "the worker of host " + host + " was interrupted while job " + rj.jobId + " of VM '" + rj.vm
                    + "' ran (" + rj.where() + "); it was cancelled and is delivered again after the restart";
            cancel(rj, new JobEndedException(FailureReason.ENGINE_STOPPING, rj.stage(), why, true));
            return outcomeWithin(rj, job, bounds.commitGrace());
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    /**
     * The outcome of a job that was abandoned (then it is there at once) or was writing its
     * manifest (then it may take {@code grace}). A manifest that is still being written after the
     * grace is announced when it completes: the manifest decides whether the point exists.
     */
    private Manifest outcomeWithin(RunningJob rj, SnapshotJob job, Duration grace) {
        try {
            return rj.outcome.get(grace.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            rj.outcome.thenAccept(m -> announce(rj.jobId, job, m));
            throw new JobEndedException(
                    FailureReason.DEADLINE_EXCEEDED,
                    RunningJob.Stage.COMMIT,
                    "the job " + rj.jobId + " of VM '" + rj.vm + "' was writing its manifest when its deadline "
                            + bounds.deadline() + " passed, and had not finished " + grace + " later; if the write"
                            + " completes, the restore point exists and is announced then; check the primary"
                            + " repository's storage",
                    true);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    "interrupted while job " + rj.jobId + " of VM '" + rj.vm + "' wrote its manifest", e);
        } catch (ExecutionException e) {
            throw unwrap(e);
        }
    }

    private static RuntimeException unwrap(ExecutionException e) {
        if (e.getCause() instanceof RuntimeException r) {
            return r;
        }
        return new IllegalStateException("a job ended with " + e.getCause(), e.getCause());
    }

    private long remainingMillis(Instant deadline) {
        return Math.max(0, Duration.between(clock.instant(), deadline).toMillis());
    }

    /**
     * Abandons {@code rj} with {@code why} and tears its capture down (bounded by {@link
     * JobBounds#cancelWait()}). Returns false if the job had already committed or was committing.
     */
    private boolean cancel(RunningJob rj, JobEndedException why) {
        if (!rj.abandon(why)) {
            return false;
        }
        rj.takeCapture().ifPresent(c -> closeBounded(rj, c));
        return true;
    }

    /** Closes a cancelled job's capture on a thread of its own, waiting at most the cancel bound. */
    private void closeBounded(RunningJob rj, Capture capture) {
        CompletableFuture<Void> closed = new CompletableFuture<>();
        Thread t = new Thread(
                () -> {
                    try {
                        capture.close();
                        closed.complete(null);
                    } catch (RuntimeException e) {
                        closed.completeExceptionally(e);
                    }
                },
                "cancel-" + rj.vm);
        t.setDaemon(true);
        t.start();
        try {
            closed.get(bounds.cancelWait().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            log.warn(
                    "closing the capture of cancelled job {} of VM '{}' did not finish within {}; the hypervisor"
                            + " cleans it up when it answers again",
                    rj.jobId,
                    rj.vm,
                    bounds.cancelWait());
        } catch (ExecutionException e) {
            log.warn(
                    "closing the capture of cancelled job {} of VM '{}' failed: {}",
                    rj.jobId,
                    rj.vm,
                    e.getCause().getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void announce(String jobId, SnapshotJob job, Manifest m) {
        bus.publish(
                Topics.RESTORE_POINTS,
                job.vm(),
                Event.of(
                        jobId,
                        clock.instant(),
                        new RestorePointCreated(
                                m.vm(),
                                m.id(),
                                m.policy(),
                                job.targets(),
                                m.capturedAt(),
                                m.bytesRead(),
                                m.bytesNew())));
    }

    private void fail(
            String jobId,
            SnapshotJob job,
            RunningJob.Stage stage,
            FailureReason reason,
            String message,
            boolean retriable) {
        bus.publish(
                Topics.JOB_STATUS,
                job.vm(),
                Event.of(
                        jobId,
                        clock.instant(),
                        JobFailed.of(job.vm(), stage.wireName(), reason, String.valueOf(message), retriable)));
    }

    /** The job thread of a delivered job: runs it with retries and records the outcome. */
    private void runHandled(RunningJob rj, SnapshotJob job, Instant deadline) {
        try {
            rj.committed(runWithRetries(rj, job, deadline));
        } catch (RuntimeException e) { // every outcome goes to the handler, which publishes it once
            if (rj.abandoned()) {
                log.info(
                        "abandoned job {} of VM '{}' ended: {}",
                        rj.jobId,
                        rj.vm,
                        e.getMessage() == null ? e.toString() : e.getMessage());
            } else if (!(e instanceof TidemarkException)) {
                rj.failed(new JobEndedException(
                        FailureReason.INTERNAL_ERROR,
                        rj.stage(),
                        "job " + rj.jobId + " of VM '" + rj.vm + "' failed with an internal error in " + rj.where()
                                + ": " + e + "; report it with the worker's log",
                        false));
                log.error("job {} of VM '{}' failed with an internal error", rj.jobId, rj.vm, e);
            } else {
                rj.failed(e);
            }
        } finally {
            rj.releaseSlot();
            rj.workDir().ifPresent(BackupWorker::deleteRecursively);
            alive.remove(rj);
        }
    }

    /**
     * A delivered job: nothing if it already committed, {@code EXPIRED} if it may no longer start,
     * {@code VM_BUSY} if its VM stays busy, else attempts until one commits, the attempts are used up
     * or the next pause would pass the deadline.
     */
    private Manifest runWithRetries(RunningJob rj, SnapshotJob job, Instant deadline) {
        Optional<Manifest> done = repository.findByJob(job.vm(), rj.jobId);
        if (done.isPresent()) {
            log.info(
                    "job {} already committed restore point {}; nothing to do",
                    rj.jobId,
                    done.get().id());
            return done.get();
        }
        checkNotExpired(rj, job);
        ReentrantLock lock = lockVm(rj, deadline);
        try {
            Duration pause = bounds.backoff();
            for (int attempt = 1; ; attempt++) {
                try {
                    return attempt(rj, job, attempt == 1);
                } catch (RetriableException e) {
                    if (!rj.running()) {
                        throw e;
                    }
                    Instant now = clock.instant();
                    if (attempt >= bounds.attempts() || now.plus(pause).isAfter(deadline)) {
                        throw new RetriableException(
                                "job " + rj.jobId + " of VM '" + rj.vm + "' failed " + attempt + " time(s), the last"
                                        + " in stage " + rj.stage().wireName() + ": " + e.getMessage()
                                        + (attempt >= bounds.attempts()
                                                ? ""
                                                : "; no time left for another attempt before the job deadline")
                                        + "; the next firing tries again",
                                e);
                    }
                    log.info(
                            "job {} of VM '{}': attempt {} of {} failed in stage {} ({}); trying again in {}",
                            rj.jobId,
                            rj.vm,
                            attempt,
                            bounds.attempts(),
                            rj.stage().wireName(),
                            e.getMessage(),
                            pause);
                    rj.enter(RunningJob.Stage.QUEUED, now);
                    pauseBeforeRetry(rj, pause);
                    pause = pause.multipliedBy(2);
                    Optional<Manifest> meanwhile = repository.findByJob(job.vm(), rj.jobId);
                    if (meanwhile.isPresent()) { // a failure after the manifest was written
                        return meanwhile.get();
                    }
                }
            }
        } finally {
            vmHolders.remove(job.vm(), rj);
            lock.unlock();
        }
    }

    private void checkNotExpired(RunningJob rj, SnapshotJob job) {
        Instant now = clock.instant();
        if (job.expiredAt(now)) {
            throw new JobEndedException(
                    FailureReason.EXPIRED,
                    RunningJob.Stage.QUEUED,
                    "job " + rj.jobId + " of VM '" + rj.vm + "' was scheduled for " + job.scheduledFor()
                            + " and could not start before " + job.notAfter().orElseThrow() + " (now " + now
                            + "); it was not run: the next firing takes a new point",
                    true);
        }
    }

    /** Takes the VM's lock for {@code rj}, waiting a bounded time; else {@code VM_BUSY}. */
    private ReentrantLock lockVm(RunningJob rj, Instant deadline) {
        ReentrantLock lock = vmLocks.computeIfAbsent(rj.vm, v -> new ReentrantLock());
        RunningJob holder = vmHolders.get(rj.vm);
        boolean locked;
        try {
            if (holder != null && holder.abandoned()) {
                // an interrupted capture usually lets go at once; one that stays blocked in QEMU is not waited for
                locked = lock.tryLock(
                        Math.min(
                                ABANDONED_LET_GO.toMillis(), bounds.vmBusyWait().toMillis()),
                        TimeUnit.MILLISECONDS);
            } else {
                Duration wait = bounds.vmBusyWait();
                long left = remainingMillis(deadline);
                locked = lock.tryLock(Math.min(wait.toMillis(), left), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while job " + rj.jobId + " waited for VM '" + rj.vm + "'", e);
        }
        if (!locked) {
            RunningJob busy = vmHolders.get(rj.vm);
            throw new JobEndedException(
                    FailureReason.VM_BUSY,
                    RunningJob.Stage.QUEUED,
                    "VM '" + rj.vm + "' is busy: "
                            + (busy == null
                                    ? "another operation on it runs"
                                    : (busy.jobId + " has run since " + busy.startedAt + " (" + busy.where()
                                            + (busy.abandoned() ? ", abandoned after its deadline" : "") + ")"))
                            + "; QEMU of '" + rj.vm + "' may be stopped or hung (check its process state and QMP"
                            + " socket); job " + rj.jobId + " took no point, the next firing tries again",
                    true);
        }
        vmHolders.put(rj.vm, rj);
        return lock;
    }

    private void pauseBeforeRetry(RunningJob rj, Duration pause) {
        try {
            TimeUnit.MILLISECONDS.sleep(pause.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    "job " + rj.jobId + " of VM '" + rj.vm + "' was cancelled while it waited to try again", e);
        }
    }

    /** One attempt of a delivered job, holding the VM's lock: a host slot, the lease, the capture. */
    private Manifest attempt(RunningJob rj, SnapshotJob job, boolean first) {
        acquireSlot(job.vm());
        if (!rj.holdSlot(jobSlots)) {
            throw new RetriableException("job " + rj.jobId + " of VM '" + rj.vm + "' was cancelled");
        }
        try {
            if (first) {
                checkNotExpired(rj, job); // it may have waited long for a slot
            }
            rj.enter(RunningJob.Stage.PREPARE, clock.instant());
            try (WriteLease lease = WriteLease.acquire(repository.target(), clock, "backup of " + job.vm())) {
                return capture(rj, job);
            }
        } finally {
            rj.releaseSlot();
        }
    }

    /**
     * Runs {@code work} while no job of {@code vm} runs, and keeps the VM's jobs waiting until it
     * returns: for operations on a VM's disks that must not overlap a capture, such as a rollback.
     * Waits for a running job at most as long as a job may run (its deadline and commit grace).
     *
     * @throws RetriableException if the VM's job was abandoned and still blocks in QEMU, or did not
     *     end in that time
     */
    public <T> T exclusively(String vm, java.util.function.Supplier<T> work) {
        ReentrantLock lock = vmLocks.computeIfAbsent(vm, v -> new ReentrantLock());
        long end =
                System.nanoTime() + bounds.deadline().plus(bounds.commitGrace()).toNanos();
        try {
            while (!lock.tryLock(1, TimeUnit.SECONDS)) {
                RunningJob holder = vmHolders.get(vm);
                if ((holder != null && holder.abandoned()) || System.nanoTime() - end > 0) {
                    throw new RetriableException("VM '" + vm + "' is busy: "
                            + (holder == null
                                    ? "another operation on it runs"
                                    : holder.jobId + " has run since "
                                            + holder.startedAt + " (" + holder.where()
                                            + (holder.abandoned() ? ", abandoned after its deadline" : "") + ")")
                            + "; QEMU of '" + vm + "' may be stopped or hung; try again once it answers");
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while waiting for VM '" + vm + "'", e);
        }
        RunningJob op = new RunningJob("an exclusive operation (rollback)", vm, clock.instant());
        vmHolders.put(vm, op);
        try {
            return work.get();
        } finally {
            vmHolders.remove(vm, op);
            lock.unlock();
        }
    }

    /**
     * Runs one job on the calling thread, without deadline or retries (the CLI's and the bench's
     * way); returns the restore point it committed (or had committed before).
     */
    public Manifest backup(String jobId, SnapshotJob job) {
        ReentrantLock lock = vmLocks.computeIfAbsent(job.vm(), v -> new ReentrantLock());
        lock.lock();
        RunningJob rj = new RunningJob(jobId, job.vm(), clock.instant());
        vmHolders.put(job.vm(), rj);
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
            rj.holdSlot(jobSlots);
            // a backup reuses chunks the repository holds: keep garbage collection from sweeping meanwhile
            try (WriteLease lease = WriteLease.acquire(repository.target(), clock, "backup of " + job.vm())) {
                return capture(rj, job);
            } finally {
                rj.releaseSlot();
            }
        } finally {
            vmHolders.remove(job.vm(), rj);
            lock.unlock();
            rj.workDir().ifPresent(BackupWorker::deleteRecursively);
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

    private Manifest capture(RunningJob rj, SnapshotJob job) {
        String jobId = rj.jobId;
        Optional<Manifest> parent = repository.latest(job.vm());
        Optional<String> since = parent.flatMap(
                p -> p.disks().stream().map(DiskEntry::checkpoint).findFirst());
        Instant started = clock.instant();
        Optional<FullReason> forcedFull = parent.isPresent() ? forcedFull(job, started) : Optional.empty();
        ReadLimit readLimit =
                ReadLimit.of(job.readBytesPerSecond(), job.readIopsPerSecond(), hostReadLimit.share(), clock, sleeper);
        String id = RestorePointIds.next(started, random);
        String checkpoint = CheckpointNames.name(checkpointOwner, id);
        Path workDir = workRoot.resolve(Integer.toHexString(id.hashCode()));
        rj.workDir(workDir);
        createDirectories(workDir);
        try {
            rj.enter(RunningJob.Stage.CAPTURE, clock.instant());
            // each parent index root read once, for both decisions below, and before any guest is frozen
            Map<String, IndexRoot> roots = new HashMap<>();
            Function<DiskEntry, IndexRoot> parentRoot =
                    d -> roots.computeIfAbsent(d.name(), n -> repository.root(Digest.fromHex(d.index())));
            CaptureRequest.ChangesOnly changesOnly =
                    forcedFull.isPresent() ? CaptureRequest.ChangesOnly.NONE : changesOnly(parent, parentRoot);
            ConsistencyAchieved hooked = hooks.freeze(job.vm());
            ConsistencyPolicy quiesce = job.consistencyOrDefault();
            Capture capture;
            try {
                capture = hypervisor.capture(new CaptureRequest(
                        job.vm(), since, checkpoint, workDir, quiesce, Optional.of(checkpointOwner), changesOnly));
            } finally {
                hooks.thaw(job.vm());
            }
            try (Capture open = new OnceClosed(capture)) {
                if (!rj.holdCapture(open)) {
                    throw new RetriableException("job " + jobId + " of VM '" + job.vm()
                            + "' was cancelled while QEMU captured it; the capture is closed unused");
                }
                CaptureConsistency achieved = open.consistency();
                if (quiesce == ConsistencyPolicy.APPLICATION_REQUIRED && !achieved.isApplication()) {
                    throw new JobEndedException(
                            FailureReason.CONSISTENCY_NOT_MET,
                            RunningJob.Stage.CAPTURE,
                            "VM '" + job.vm() + "' requires application consistency (policy " + job.policy()
                                    + "), but " + hypervisor + " captured it "
                                    + achieved.reason().orElse("crash-consistent")
                                    + "; install and start qemu-guest-agent in the guest, or relax the policy to"
                                    + " consistency: application-preferred",
                            false);
                }
                ConsistencyAchieved consistency = achieved.isApplication() ? ConsistencyAchieved.APPLICATION : hooked;
                hooks.onCaptured(job.vm(), open.capturedAt());
                if (!rj.running()) { // abandoned meanwhile: announce no capture that will never commit
                    throw new RetriableException("job " + jobId + " of VM '" + job.vm() + "' was cancelled");
                }
                bus.publish(
                        Topics.JOB_STATUS,
                        job.vm(),
                        Event.of(jobId, clock.instant(), new SnapshotCaptured(job.vm(), open.capturedAt())));
                rj.enter(RunningJob.Stage.EXPORT, clock.instant());
                // the capture is done (the guest thawed): from here this job's thread, and the NBD reader
                // it starts, yield the CPU to the VMs; a job's thread is never reused
                Niceness.lowerCurrentThread(backupNice);
                List<DiskEntry> disks = new ArrayList<>();
                for (DiskExport export : open.disks()) {
                    rj.exporting(disks.size() + 1, open.disks().size());
                    try {
                        disks.add(readDisk(
                                export, parent, parentRoot, checkpoint, forcedFull, readLimit, rj.readProgress()));
                    } catch (RuntimeException e) {
                        throw snapshotLostOr(open, e);
                    }
                }
                // a snapshot given up after its last read still makes no restore point
                open.verifyIntact();
                Manifest m = new Manifest(
                        FormatConstants.REPOSITORY_FORMAT_VERSION,
                        id,
                        job.vm(),
                        host,
                        jobId,
                        open.capturedAt(),
                        clock.instant(),
                        consistency,
                        job.trigger(),
                        job.policy(),
                        parent.map(Manifest::id),
                        disks,
                        quiesce == ConsistencyPolicy.CRASH ? Optional.empty() : achieved.reason(),
                        open.definition());
                rj.enter(RunningJob.Stage.COMMIT, clock.instant());
                // the commit gate: a job abandoned after its deadline never writes its manifest (§4)
                if (!rj.enterCommit()) {
                    throw new RetriableException("job " + jobId + " of VM '" + job.vm()
                            + "' was cancelled before its commit; no restore point was written");
                }
                repository.commit(m);
                rj.committed(m);
                try {
                    open.commit();
                } catch (TidemarkException e) { // the point exists; the next capture reads in full if it must
                    log.warn(
                            "restore point {} of {} is committed, but dropping the previous checkpoint failed: {}",
                            m.id(),
                            m.vm(),
                            e.getMessage());
                }
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
            } finally {
                rj.takeCapture();
            }
        } finally {
            deleteRecursively(workDir);
        }
    }

    /**
     * The policy's {@code full-every}: why this job must read every disk in full although change
     * tracking works, or empty. It still stores only the chunks the repository lacks.
     */
    private Optional<FullReason> forcedFull(SnapshotJob job, Instant now) {
        if (job.fullEvery().isEmpty()) {
            return Optional.empty();
        }
        Duration every = job.fullEvery().get();
        Optional<Manifest> lastFull = repository.manifests(job.vm()).stream()
                .filter(m -> m.disks().stream().allMatch(d -> d.fullReason().isPresent()))
                .reduce((a, b) -> b);
        if (lastFull.isEmpty()) {
            return Optional.of(FullReason.of(
                    FullReason.Kind.FULL_EVERY,
                    "policy '" + job.policy() + "' full-every " + every + ": no full restore point of " + job.vm()
                            + " yet"));
        }
        Duration age = Duration.between(lastFull.get().capturedAt(), now);
        if (age.compareTo(every) < 0) {
            return Optional.empty();
        }
        return Optional.of(FullReason.of(
                FullReason.Kind.FULL_EVERY,
                "policy '" + job.policy() + "' full-every " + every + ": the newest full restore point "
                        + lastFull.get().id() + " is " + age + " old"));
    }

    /**
     * What a failed read of {@code capture} means: a snapshot given up under the reader (a bounded
     * copy-before-write that timed out, §4) fails its reads, so its reason replaces the read error.
     */
    private static RuntimeException snapshotLostOr(Capture capture, RuntimeException readFailure) {
        try {
            capture.verifyIntact();
            return readFailure;
        } catch (TidemarkException lost) {
            lost.addSuppressed(readFailure);
            return lost;
        }
    }

    /**
     * The disks of {@code parent} (name → size) that an incremental capture reads only the changed
     * chunks of, as {@link #readDisk} will decide: those whose index the new one can start from. A disk
     * whose index cannot be read is left out (snapshot whole; its read fails as before).
     */
    private CaptureRequest.ChangesOnly changesOnly(
            Optional<Manifest> parent, Function<DiskEntry, IndexRoot> parentRoot) {
        int chunk = repository.config().chunkSize();
        if (Integer.bitCount(chunk) != 1) { // a bitmap's blocks are powers of two: chunks of 192 KiB are not
            return CaptureRequest.ChangesOnly.NONE;
        }
        Map<String, Long> out = new HashMap<>();
        for (DiskEntry d : parent.map(Manifest::disks).orElse(List.of())) {
            try {
                IndexRoot root = parentRoot.apply(d);
                if (repository.canStartFrom(root, root.diskSize())) {
                    out.put(d.name(), root.diskSize());
                }
            } catch (TidemarkException e) {
                log.debug("disk {}: its parent index is unreadable, snapshot whole: {}", d.name(), e.getMessage());
            }
        }
        // a changed chunk is read whole (or its changed ranges, which lie within it)
        return out.isEmpty() ? CaptureRequest.ChangesOnly.NONE : new CaptureRequest.ChangesOnly(out, chunk);
    }

    private DiskEntry readDisk(
            DiskExport export,
            Optional<Manifest> parent,
            Function<DiskEntry, IndexRoot> parentRoot,
            String checkpoint,
            Optional<FullReason> forcedFull,
            ReadLimit readLimit,
            DiskBackup.Progress progress) {
        Optional<IndexRoot> parentIndex = parent.flatMap(p -> p.disk(export.disk()))
                .map(parentRoot)
                .filter(r -> r.diskSize() == export.sizeBytes());
        Optional<FullReason> fullReason = export.fullReason().or(() -> forcedFull);
        if (export.incremental() && parentIndex.isEmpty()) {
            fullReason = Optional.of(FullReason.of(
                    FullReason.Kind.NO_PARENT_INDEX,
                    "the parent restore point has no index of this disk at this size"));
        }
        DiskIndexBuilder index =
                repository.newIndex(export.sizeBytes(), fullReason.isEmpty() ? parentIndex : Optional.empty());
        if (fullReason.isEmpty() && !index.hasParent()) {
            fullReason = Optional.of(
                    FullReason.of(FullReason.Kind.PARENT_GEOMETRY, "the parent index has another geometry"));
        }
        Optional<String> dirty = fullReason.isEmpty()
                ? export.dirtyBitmapContext()
                        .or(() -> export.changedRanges().map(r -> ChangedRangesBlockSource.CONTEXT))
                : Optional.empty();
        if (export.snapshotOfChangesOnly() && !dirty.equals(export.dirtyBitmapContext())) {
            // changesOnly and this method disagree: reading more than the changes would mix in later writes
            throw new PermanentException("disk " + export.disk() + " was snapshot for its changes only, but would"
                    + " be read " + fullReason.map(FullReason::detail).orElse("by other ranges")
                    + "; no restore point is made from it. This is a bug: please report it");
        }
        DiskBackup.Outcome out;
        try (BlockSource source = export.changedRanges().isPresent()
                ? new ChangedRangesBlockSource(
                        opener.open(export), export.changedRanges().get())
                : opener.open(export)) {
            out = new DiskBackup(
                            repository,
                            cpu,
                            readsInFlight,
                            readLimit,
                            maxPatchBytes(repository.config().chunkSize()))
                    .run(source, dirty, index, progress);
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
        try {
            FileTrees.delete(dir);
        } catch (IOException e) {
            log.warn("could not remove the work directory {}: {}", dir, e.getMessage());
        }
    }

    /**
     * Drains (SIGTERM): refuses new deliveries, lets running jobs finish for {@link
     * JobBounds#drain()}, then cancels the rest (they end in {@code ENGINE_STOPPING}, their
     * deliveries are not acknowledged and come again after the restart, idempotent by job id), and
     * removes the work directories of this worker's jobs.
     */
    @Override
    public void close() {
        closing = true;
        long drainEnd = System.nanoTime() + bounds.drain().toNanos();
        for (RunningJob rj : List.copyOf(handled)) {
            long left = drainEnd - System.nanoTime();
            try {
                rj.outcome.get(Math.max(0, left), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                break;
            } catch (ExecutionException e) {
                // its handler reports it
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        for (RunningJob rj : List.copyOf(alive)) {
            String why = "the worker of host " + host + " stopped while job " + rj.jobId + " of VM '" + rj.vm
                    + "' ran (" + rj.where() + "); it was cancelled and commits nothing now; it is delivered again"
                    + " after the restart";
            if (cancel(rj, new JobEndedException(FailureReason.ENGINE_STOPPING, rj.stage(), why, true))) {
                log.warn("{}", why);
            }
        }
        cpu.shutdownNow();
        for (RunningJob rj : List.copyOf(alive)) {
            rj.workDir().ifPresent(BackupWorker::deleteRecursively);
        }
    }

    /** A capture closed at most once, whoever closes it first: the job thread or a cancellation. */
    private static final class OnceClosed implements Capture {
        private final Capture capture;
        private final AtomicBoolean closed = new AtomicBoolean();

        OnceClosed(Capture capture) {
            this.capture = capture;
        }

        @Override
        public Instant capturedAt() {
            return capture.capturedAt();
        }

        @Override
        public CaptureConsistency consistency() {
            return capture.consistency();
        }

        @Override
        public Optional<VmDefinition> definition() {
            return capture.definition();
        }

        @Override
        public List<DiskExport> disks() {
            return capture.disks();
        }

        @Override
        public void commit() {
            capture.commit();
        }

        @Override
        public void verifyIntact() {
            capture.verifyIntact();
        }

        @Override
        public void close() {
            if (closed.compareAndSet(false, true)) {
                capture.close();
            }
        }
    }
}
