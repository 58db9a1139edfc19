package io.tidemark.kafka;

import io.tidemark.core.concurrent.DaemonThreads;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs jobs on one lane per key: the jobs of one key one after the other, in the order submitted;
 * jobs of different keys at once, at most {@code maxInFlight} of them. A job that blocks holds its
 * lane and one of the {@code maxInFlight} threads, nothing else. A job asks to be attempted again
 * after a pause by returning it; its lane waits meanwhile without holding a thread.
 */
final class KeyLanes {

    private static final Logger log = LoggerFactory.getLogger(KeyLanes.class);

    /** One unit of work on a lane. */
    interface Job {
        /** Runs one attempt: empty when done, or the pause after which to attempt it again. */
        Optional<Duration> attempt();

        /** Whether to drop it rather than start it (its partition was revoked). */
        boolean cancelled();
    }

    private final Map<String, ArrayDeque<Job>> lanes = new HashMap<>();
    /** Keys whose lane has a job to start and that no thread runs; each key at most once. */
    private final LinkedBlockingQueue<String> ready = new LinkedBlockingQueue<>();

    private final List<Thread> threads = new ArrayList<>();
    private final ScheduledThreadPoolExecutor timer;
    private int running;
    private int queued;
    private boolean stopped;

    KeyLanes(String name, int maxInFlight) {
        if (maxInFlight < 1) {
            throw new IllegalArgumentException("maxInFlight must be at least 1, not " + maxInFlight);
        }
        this.timer = new ScheduledThreadPoolExecutor(1, DaemonThreads.named(name + "-retry"));
        this.timer.setRemoveOnCancelPolicy(true);
        for (int i = 0; i < maxInFlight; i++) {
            threads.add(DaemonThreads.named(name + "-" + i).newThread(this::work));
        }
        threads.forEach(Thread::start);
    }

    /** Queues {@code job} at the end of {@code key}'s lane. */
    synchronized void submit(String key, Job job) {
        if (stopped) {
            return;
        }
        ArrayDeque<Job> lane = lanes.get(key);
        queued++;
        if (lane == null) {
            lane = new ArrayDeque<>();
            lanes.put(key, lane);
            lane.add(job);
            ready.add(key);
        } else {
            lane.add(job);
        }
    }

    /** Jobs submitted and not done (running, waiting to retry or queued). */
    synchronized int pending() {
        return queued;
    }

    /** Jobs running now. */
    synchronized int running() {
        return running;
    }

    /**
     * Starts no further job and waits up to {@code bound} for the running ones to end; the others
     * are dropped. Returns whether none runs any more. Only the first call waits.
     */
    boolean stop(Duration bound) {
        long deadline = System.nanoTime() + bound.toNanos();
        synchronized (this) {
            if (stopped) {
                return running == 0; // waited once already
            }
            stopped = true;
            timer.shutdownNow();
            while (running > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            notifyAll();
            boolean idle = running == 0;
            if (!idle) {
                log.warn("{} handler(s) still running after {} s; leaving them", running, bound.toSeconds());
            }
            return idle;
        }
    }

    private void work() {
        while (true) {
            String key;
            try {
                key = ready.poll(500, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
            Job job;
            synchronized (this) {
                if (stopped) {
                    return;
                }
                if (key == null) {
                    continue;
                }
                job = lanes.get(key).peek();
                running++;
            }
            Optional<Duration> again = Optional.empty();
            try {
                if (!job.cancelled()) {
                    again = job.attempt();
                }
            } catch (RuntimeException e) {
                log.error("lane {}: a job failed unexpectedly and is dropped: {}", key, e.getMessage(), e);
            }
            synchronized (this) {
                running--;
                notifyAll();
                ArrayDeque<Job> lane = lanes.get(key);
                if (again.isEmpty()) {
                    lane.poll();
                    queued--;
                }
                if (stopped) {
                    return;
                }
                if (again.isPresent()) {
                    timer.schedule(() -> ready.add(key), again.get().toNanos(), TimeUnit.NANOSECONDS);
                } else if (lane.isEmpty()) {
                    lanes.remove(key);
                } else {
                    ready.add(key);
                }
            }
        }
    }
}
