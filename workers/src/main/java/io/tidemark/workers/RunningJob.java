package io.tidemark.workers;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.repository.Manifest;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One job of the worker while it runs: its stage, its host slot, its open capture, and the gate
 * that decides, once, whether it commits or is abandoned.
 *
 * <p>The gate: the job thread may write the manifest only after moving the job from {@code
 * RUNNING} to {@code COMMITTING}; the worker may abandon it (deadline, engine stopping) only by
 * moving it from {@code RUNNING} to {@code ABANDONED}. Exactly one of them wins, so a job reported
 * abandoned never commits a restore point afterwards.
 */
final class RunningJob {

    /** How far a job got; the wire name goes into {@code JobFailed.stage}. */
    enum Stage {
        /** Delivered, waiting to start: for its VM, a host slot, or a retry. */
        QUEUED("queued"),
        /** Looking up the parent, taking the repository's write lease, creating the work directory. */
        PREPARE("prepare"),
        /** Freezing the guest and capturing the disks at one instant. */
        CAPTURE("capture"),
        /** Reading the captured disks and storing their chunks and indexes. */
        EXPORT("export"),
        /** Writing the manifest, then dropping the old checkpoint. */
        COMMIT("commit");

        private final String wireName;

        Stage(String wireName) {
            this.wireName = wireName;
        }

        String wireName() {
            return wireName;
        }
    }

    enum State {
        RUNNING,
        COMMITTING,
        DONE,
        ABANDONED
    }

    final String jobId;
    final String vm;
    final Instant startedAt;
    /** Completed with the committed manifest, or exceptionally with why the job ended. */
    final CompletableFuture<Manifest> outcome = new CompletableFuture<>();
    /** Completed once the capture returned (the job reads the disks, or commits). */
    final CompletableFuture<Void> pastCapture = new CompletableFuture<>();

    private final AtomicReference<State> state = new AtomicReference<>(State.RUNNING);
    private volatile Stage stage = Stage.QUEUED;
    private volatile Instant stageSince;
    private volatile Thread thread;
    private volatile Path workDir;
    /** During {@link Stage#EXPORT}: the disk being read (1-based) and how many there are; 0 before. */
    private volatile int disk;

    private volatile int disks;
    /** During {@link Stage#EXPORT}: bytes read so far, and to read, of the disks begun (all disks). */
    private final java.util.concurrent.atomic.AtomicLong bytesRead = new java.util.concurrent.atomic.AtomicLong();

    private final java.util.concurrent.atomic.AtomicLong bytesToRead = new java.util.concurrent.atomic.AtomicLong();
    private Capture capture;
    private Semaphore slots;

    RunningJob(String jobId, String vm, Instant startedAt) {
        this.jobId = jobId;
        this.vm = vm;
        this.startedAt = startedAt;
        this.stageSince = startedAt;
    }

    void runsOn(Thread t) {
        this.thread = t;
    }

    Stage stage() {
        return stage;
    }

    Instant stageSince() {
        return stageSince;
    }

    /** Notes that the export reads disk {@code number} (1-based) of {@code of}. */
    void exporting(int number, int of) {
        if (number == 1) { // a new attempt's export starts from nothing
            bytesRead.set(0);
            bytesToRead.set(0);
        }
        disks = of;
        disk = number;
    }

    /** Where the export's readers report the bytes of this job's disks. */
    DiskBackup.Progress readProgress() {
        return new DiskBackup.Progress() {
            @Override
            public void toRead(long bytes) {
                bytesToRead.addAndGet(bytes);
            }

            @Override
            public void read(long bytes) {
                bytesRead.addAndGet(bytes);
            }
        };
    }

    /** What a status page shows of this job now. */
    JobProgress progress() {
        Stage s = stage;
        return new JobProgress(
                jobId,
                vm,
                startedAt,
                s.wireName(),
                s.ordinal() + 1,
                Stage.values().length,
                stageSince,
                disk,
                disks,
                bytesRead.get(),
                bytesToRead.get());
    }

    void enter(Stage next, Instant at) {
        stage = next;
        stageSince = at;
        if (next == Stage.EXPORT || next == Stage.COMMIT) {
            pastCapture.complete(null);
        }
    }

    State state() {
        return state.get();
    }

    boolean running() {
        return state.get() == State.RUNNING;
    }

    boolean abandoned() {
        return state.get() == State.ABANDONED;
    }

    Optional<Path> workDir() {
        return Optional.ofNullable(workDir);
    }

    void workDir(Path dir) {
        this.workDir = dir;
    }

    /** The commit gate, on the job thread: true if the job may write its manifest now. */
    boolean enterCommit() {
        return state.compareAndSet(State.RUNNING, State.COMMITTING);
    }

    /** The job thread's outcome: a committed restore point. */
    void committed(Manifest m) {
        state.set(State.DONE);
        outcome.complete(m);
    }

    /** The job thread's outcome: an error. Ignored if the job was abandoned meanwhile. */
    void failed(RuntimeException e) {
        if (state.compareAndSet(State.RUNNING, State.DONE) || state.compareAndSet(State.COMMITTING, State.DONE)) {
            outcome.completeExceptionally(e);
        }
    }

    /**
     * Abandons the job unless it already committed or is committing: its outcome becomes {@code
     * why}, its host slot is released and its thread interrupted. The caller then closes the
     * capture ({@link #takeCapture}).
     *
     * @return whether this call abandoned it
     */
    boolean abandon(JobEndedException why) {
        if (!state.compareAndSet(State.RUNNING, State.ABANDONED)) {
            return false;
        }
        outcome.completeExceptionally(why);
        releaseSlot();
        Thread t = thread;
        if (t != null) {
            t.interrupt();
        }
        return true;
    }

    /** Records the host slot the job holds; false (and nothing held) if the job was abandoned. */
    synchronized boolean holdSlot(Semaphore hostSlots) {
        if (!running()) {
            hostSlots.release();
            return false;
        }
        slots = hostSlots;
        return true;
    }

    /** Releases the job's host slot, once, whoever calls first. */
    synchronized void releaseSlot() {
        if (slots != null) {
            slots.release();
            slots = null;
        }
    }

    /** Records the open capture; false if the job was abandoned (the caller closes it at once). */
    synchronized boolean holdCapture(Capture c) {
        if (abandoned()) {
            return false;
        }
        capture = c;
        return true;
    }

    /** The open capture, for the one caller that closes it; empty if none or already taken. */
    synchronized Optional<Capture> takeCapture() {
        Capture c = capture;
        capture = null;
        return Optional.ofNullable(c);
    }

    /** The stage and since when, for messages. */
    String where() {
        return "stage " + stage.wireName() + " since " + stageSince;
    }

    /** Why a {@link TidemarkException} ended the job, given the stage it was in. */
    static FailureReason classify(TidemarkException e, Stage stage) {
        if (e instanceof JobEndedException ended) {
            return ended.reason();
        }
        if (e instanceof io.tidemark.core.hypervisor.VmNotFoundException) {
            return FailureReason.VM_NOT_FOUND;
        }
        if (e instanceof io.tidemark.core.hypervisor.ConsistencyNotMetException) {
            return FailureReason.CONSISTENCY_NOT_MET;
        }
        return switch (stage) {
            case QUEUED, PREPARE, COMMIT -> FailureReason.REPOSITORY_FAILED;
            case CAPTURE -> FailureReason.CAPTURE_FAILED;
            case EXPORT -> FailureReason.EXPORT_FAILED;
        };
    }
}
