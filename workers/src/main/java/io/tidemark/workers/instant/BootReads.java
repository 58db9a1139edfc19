package io.tidemark.workers.instant;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.BootReadLog;
import io.tidemark.repository.BootReadTrace;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Boot-read prefetch of one instantly restored disk: when the export starts, the newest trace of
 * the VM's disk ({@link BootReadLog}) is read in the background and its chunks prefetched into the
 * export's cache ({@link RestorePointExport#prefetchAll}) while the guest boots; meanwhile the
 * chunks the guest reads are recorded, and after {@link Options#window()} (or at {@link #finish},
 * whichever is first) they are stored as the disk's new trace for the next instant restore.
 *
 * <p>A trace is a hint. A missing, unreadable or mismatched trace means no prefetch (logged once);
 * a trace that cannot be stored (a read-only repository, a target outage) is logged and dropped.
 * Neither ever fails the restore. An empty recording (the guest read nothing) is not stored, so it
 * does not replace a useful trace.
 */
public final class BootReads implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(BootReads.class);

    /** What to do with boot reads. */
    public enum Mode {
        /** Prefetch the newest trace and record a new one (the default). */
        PREFETCH,
        /** Record a new trace only. */
        RECORD,
        /** Neither: the repository is only read, and only on demand. */
        OFF
    }

    /**
     * @param mode prefetch and record, record only, or off
     * @param window how long after the start reads are recorded (a boot's reads; hydration ends the
     *     recording earlier, its mirror reads everything)
     * @param maxChunks the most chunk numbers recorded (at most {@link BootReadLog#MAX_CHUNKS})
     * @param concurrency the most prefetch fetches in flight (the export's fetch pool serves the
     *     guest's reads with the rest)
     */
    public record Options(Mode mode, Duration window, int maxChunks, int concurrency) {
        public Options {
            maxChunks = Math.max(0, Math.min(maxChunks, BootReadLog.MAX_CHUNKS));
        }

        public static Options defaults() {
            return new Options(Mode.PREFETCH, Duration.ofSeconds(120), 1024, 4);
        }

        public static Options off() {
            return new Options(Mode.OFF, Duration.ZERO, 0, 1);
        }

        public Options withMode(Mode m) {
            return new Options(m, window, maxChunks, concurrency);
        }
    }

    /** What the prefetch found: the trace's chunk count and the point it was taken on. */
    public record Loaded(int chunks, String restorePoint) {}

    private final BootReadLog traces;
    private final Manifest point;
    private final String disk;
    private final RestorePointExport export;
    private final Options options;
    private final Clock clock;
    private final ScheduledExecutorService timer;
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile ScheduledFuture<?> windowEnd;
    private volatile Optional<Loaded> loaded = Optional.empty();
    private volatile int recordedChunks = -1;

    private BootReads(
            BootReadLog traces,
            Manifest point,
            String disk,
            RestorePointExport export,
            Options options,
            Clock clock,
            ScheduledExecutorService timer) {
        this.traces = traces;
        this.point = point;
        this.disk = disk;
        this.export = export;
        this.options = options;
        this.clock = clock;
        this.timer = timer;
    }

    /**
     * Starts the prefetch and the recording of {@code export} (disk {@code disk} of {@code point})
     * as {@code options} say; returns at once (the trace is read in the background).
     */
    public static BootReads start(
            BootReadLog traces, Manifest point, String disk, RestorePointExport export, Options options, Clock clock) {
        ScheduledExecutorService timer = options.mode() == Mode.OFF
                ? null
                : Executors.newSingleThreadScheduledExecutor(
                        DaemonThreads.named("instant-boot-reads " + export.name()));
        BootReads b = new BootReads(traces, point, disk, export, options, clock, timer);
        if (options.mode() == Mode.OFF) {
            b.finished.set(true);
            return b;
        }
        export.startRecording(options.maxChunks());
        if (options.mode() == Mode.PREFETCH) {
            timer.execute(b::prefetch);
        }
        b.windowEnd = timer.schedule(b::finish, Math.max(1, options.window().toMillis()), TimeUnit.MILLISECONDS);
        return b;
    }

    private void prefetch() {
        Optional<BootReadTrace> trace;
        try {
            trace = traces.latest(point.vm(), disk);
        } catch (TidemarkException e) {
            log.warn("no boot prefetch for disk '{}' of {}: {}", disk, point.vm(), e.getMessage());
            return;
        }
        if (trace.isEmpty()) {
            log.info(
                    "no boot prefetch for disk '{}' of {}: no boot-read trace yet (this restore records one)",
                    disk,
                    point.vm());
            return;
        }
        BootReadTrace t = trace.get();
        if (t.chunkSize() != export.chunkSize()) {
            log.warn(
                    "no boot prefetch for disk '{}' of {}: its trace counts {}-byte chunks, the point has {}-byte"
                            + " chunks",
                    disk,
                    point.vm(),
                    t.chunkSize(),
                    export.chunkSize());
            return;
        }
        loaded = Optional.of(new Loaded(t.chunks().size(), t.restorePoint()));
        log.info(
                "boot prefetch for disk '{}' of {}: {} chunks traced on point {} at {}",
                disk,
                point.vm(),
                t.chunks().size(),
                t.restorePoint(),
                t.at());
        export.prefetchAll(t.chunks(), options.concurrency());
    }

    /** The trace the prefetch uses, once it was read; empty when there is none (yet). */
    public Optional<Loaded> loaded() {
        return loaded;
    }

    /** Chunks recorded by {@link #finish}; -1 before it ran or when recording is off. */
    public int recordedChunks() {
        return recordedChunks;
    }

    public Options options() {
        return options;
    }

    /**
     * Ends the recording and stores the trace (when it holds any chunk); later calls do nothing.
     * Called at the end of the window, before hydration, and by {@link #close()}.
     */
    public void finish() {
        if (!finished.compareAndSet(false, true)) {
            return;
        }
        List<Long> chunks = export.stopRecording();
        recordedChunks = chunks.size();
        if (chunks.isEmpty()) {
            log.info("boot-read trace of disk '{}' of {}: no reads recorded, none stored", disk, point.vm());
            return;
        }
        try {
            traces.record(new BootReadTrace(
                    BootReadTrace.VERSION, point.vm(), disk, point.id(), clock.instant(), export.chunkSize(), chunks));
            log.info("boot-read trace of disk '{}' of {} stored: {} chunks", disk, point.vm(), chunks.size());
        } catch (TidemarkException e) {
            log.warn(
                    "the boot-read trace of disk '{}' of {} ({} chunks) was not stored, so the next instant restore"
                            + " will not prefetch it: {}",
                    disk,
                    point.vm(),
                    chunks.size(),
                    e.getMessage());
        }
    }

    /** {@link #finish}, then stops the timer (waiting up to 10 s for a trace being read or stored). */
    @Override
    public void close() {
        finish();
        if (timer == null) {
            return;
        }
        ScheduledFuture<?> w = windowEnd;
        if (w != null) {
            w.cancel(false);
        }
        timer.shutdown();
        try {
            if (!timer.awaitTermination(10, TimeUnit.SECONDS)) {
                timer.shutdownNow();
            }
        } catch (InterruptedException e) {
            timer.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
