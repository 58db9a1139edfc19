package io.tidemark.workers;

import java.time.Duration;
import java.util.Objects;

/**
 * How long a job of the worker may take and how often it is tried: what keeps one stuck VM from
 * holding more than its own jobs.
 *
 * @param deadline how long one delivered job may run, from its delivery to its restore point; past
 *     it the job is cancelled and ends in {@code JobFailed} ({@code DEADLINE_EXCEEDED})
 * @param vmBusyWait how long a job waits for its VM while another operation on that VM (a job, a
 *     rollback) runs; a VM whose previous job was abandoned fails the next one at once ({@code
 *     VM_BUSY})
 * @param attempts how often a job is tried when it fails with a retriable error (1 = no retry)
 * @param backoff the pause before the second attempt; it doubles before each further one, and no
 *     attempt starts unless the pause ends before the deadline
 * @param commitGrace how long a job that had begun writing its manifest when its deadline passed
 *     may still finish it
 * @param drain how long {@code close()} lets running jobs finish before it cancels them
 * @param cancelWait how long cancelling a job waits for its capture to close (the hypervisor tears
 *     the exports and block jobs down)
 */
public record JobBounds(
        Duration deadline,
        Duration vmBusyWait,
        int attempts,
        Duration backoff,
        Duration commitGrace,
        Duration drain,
        Duration cancelWait) {

    /** The default job deadline. */
    public static final Duration DEFAULT_DEADLINE = Duration.ofMinutes(30);

    public JobBounds {
        positive("deadline", deadline);
        positive("vmBusyWait", vmBusyWait);
        positive("backoff", backoff);
        positive("commitGrace", commitGrace);
        positive("drain", drain);
        positive("cancelWait", cancelWait);
        if (attempts < 1) {
            throw new IllegalArgumentException("a job must be tried at least once, not " + attempts + " times");
        }
    }

    /**
     * The defaults: a 30 min deadline, 1 min waiting for a busy VM, 3 attempts 5 s and 10 s apart,
     * 1 min to finish a manifest write, 20 s to drain, 10 s to cancel.
     */
    public static JobBounds defaults() {
        return new JobBounds(
                DEFAULT_DEADLINE,
                Duration.ofMinutes(1),
                3,
                Duration.ofSeconds(5),
                Duration.ofMinutes(1),
                Duration.ofSeconds(20),
                Duration.ofSeconds(10));
    }

    /** These bounds with another job deadline; the VM wait never exceeds it. */
    public JobBounds withDeadline(Duration newDeadline) {
        positive("deadline", newDeadline);
        return new JobBounds(
                newDeadline, min(vmBusyWait, newDeadline), attempts, backoff, commitGrace, drain, cancelWait);
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }

    private static void positive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, not " + d);
        }
    }
}
