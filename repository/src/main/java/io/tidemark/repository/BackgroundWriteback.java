package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Flushes a {@link DiskSink}'s image to stable storage while the restore is still writing it: each
 * time {@code everyBytes} more have been written, one background thread runs the sink's flush (an
 * fsync, an NBD flush), so the disk writes overlap fetching and verifying instead of all waiting for
 * the commit's flush at the end (which then only flushes the tail), and the dirty data a restore
 * leaves in the page cache stays bounded. At most one flush runs at a time; the first one that fails
 * is kept and thrown by {@link #finish finish(true)}, since a later flush may not report it again.
 */
public final class BackgroundWriteback {

    /** Written bytes after which a sink starts a background flush unless told otherwise: 64 MiB. */
    public static final long DEFAULT_EVERY_BYTES = 64L << 20;

    /** A flush of everything written so far. */
    @FunctionalInterface
    public interface Flush {
        void run() throws Exception;
    }

    private final String what;
    private final long everyBytes;
    private final Flush flush;
    private final AtomicLong unflushed = new AtomicLong();
    private final AtomicLong done = new AtomicLong();
    private final AtomicReference<Exception> failure = new AtomicReference<>();
    private final Object lock = new Object();
    private ExecutorService thread; // created at the first flush; guarded by lock
    private Future<?> running; // guarded by lock
    private boolean stopped; // guarded by lock

    /**
     * @param what the image, for messages
     * @param everyBytes bytes written between two background flushes
     * @param flush flushes what is written so far; may run while writes go on
     */
    public BackgroundWriteback(String what, long everyBytes, Flush flush) {
        this.what = what;
        this.everyBytes = Math.max(1, everyBytes);
        this.flush = flush;
    }

    /** Counts {@code bytes} written; starts a background flush past the threshold, unless one runs. */
    public void written(long bytes) {
        if (unflushed.addAndGet(bytes) < everyBytes) {
            return;
        }
        synchronized (lock) {
            if (stopped || (running != null && !running.isDone()) || unflushed.get() < everyBytes) {
                return;
            }
            unflushed.set(0);
            if (thread == null) {
                thread = Executors.newSingleThreadExecutor(DaemonThreads.named("restore-writeback"));
            }
            running = thread.submit(() -> {
                try {
                    flush.run();
                    done.incrementAndGet();
                } catch (Exception e) { // kept for finish(true)
                    failure.compareAndSet(null, e);
                }
            });
        }
    }

    /** Background flushes completed so far. */
    public long flushes() {
        return done.get();
    }

    /**
     * Starts no more flushes and waits for the running one, if any. With {@code rethrow} (before a
     * commit's own flush) a background flush's failure is thrown; without (an abandoned image about
     * to be removed) it is not.
     */
    public void finish(boolean rethrow) {
        Future<?> f;
        synchronized (lock) {
            stopped = true;
            f = running;
            if (thread != null) {
                thread.shutdown();
            }
        }
        if (f != null) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (rethrow) {
                    throw new PermanentException("interrupted while flushing " + what, e);
                }
            } catch (ExecutionException e) {
                throw new IllegalStateException("background flush of " + what + " failed", e.getCause());
            }
        }
        Exception e = failure.get();
        if (rethrow && e instanceof TidemarkException t) {
            throw t;
        }
        if (rethrow && e != null) {
            throw new PermanentException(
                    "cannot flush " + what + " to disk: " + e.getMessage() + "; is the disk full or failing?", e);
        }
    }
}
