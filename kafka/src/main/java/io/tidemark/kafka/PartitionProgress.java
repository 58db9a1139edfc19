package io.tidemark.kafka;

import java.util.OptionalLong;
import java.util.TreeSet;
import org.apache.kafka.common.TopicPartition;

/**
 * Which fetched events of one assigned partition are handled, when they finish out of order: the
 * offset to commit is that of the first event not yet finished (or the one after the last fetched
 * when all are), so a crash redelivers what was in flight and skips nothing. One per assignment:
 * once revoked, nothing more of it is committed and its queued events are not handled.
 */
final class PartitionProgress {

    final TopicPartition partition;
    private final TreeSet<Long> unfinished = new TreeSet<>();
    private long next = -1;
    private long committed = -1;
    private volatile boolean revoked;
    private int running;
    /** Whether the consumer paused this partition (the polling thread's alone). */
    boolean paused;

    PartitionProgress(TopicPartition partition) {
        this.partition = partition;
    }

    synchronized void fetched(long offset) {
        unfinished.add(offset);
        next = Math.max(next, offset + 1);
    }

    synchronized void finished(long offset) {
        unfinished.remove(offset);
    }

    /** Events fetched and not finished. */
    synchronized int unfinished() {
        return unfinished.size();
    }

    /** The offset to commit, if it is beyond the last one committed. */
    synchronized OptionalLong committable() {
        if (next < 0) {
            return OptionalLong.empty();
        }
        long upTo = unfinished.isEmpty() ? next : unfinished.first();
        return upTo > committed ? OptionalLong.of(upTo) : OptionalLong.empty();
    }

    synchronized void committed(long offset) {
        committed = Math.max(committed, offset);
    }

    /**
     * Marks the start of a handler call for one of its events; false (and nothing marked) once
     * revoked, when the event must not be handled here any more.
     */
    synchronized boolean begin() {
        if (revoked) {
            return false;
        }
        running++;
        return true;
    }

    synchronized void end() {
        running--;
        notifyAll();
    }

    /** No handler starts for this partition any more. */
    synchronized void revoke() {
        revoked = true;
    }

    boolean revoked() {
        return revoked;
    }

    /** Waits until no handler of this partition runs, or until {@code deadlineNanos} (System.nanoTime). */
    synchronized boolean awaitIdle(long deadlineNanos) {
        while (running > 0) {
            long left = deadlineNanos - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            try {
                java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }
}
