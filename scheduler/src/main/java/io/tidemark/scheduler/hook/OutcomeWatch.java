package io.tidemark.scheduler.hook;

import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Follows the outcome events of one submission's jobs, matched by job id, and lets one thread wait
 * for a {@link WaitLevel}. A later stage implies the earlier ones (a {@code RestorePointCreated}
 * means captured), so a job whose restore point already existed — the worker then announces only
 * the commit again — still counts as captured.
 *
 * <p>A {@code JobFailed} stamped before the submission belongs to an earlier attempt replayed to
 * this new consumer group and is ignored; a later one fails the wait unless its job already reached
 * the level. The deadline is read from the clock on every event and at least every {@link #TICK},
 * so an injected clock decides when the wait times out.
 */
final class OutcomeWatch implements EventBus.EventHandler {

    /** The longest the waiter sleeps before it reads the clock again. */
    static final Duration TICK = Duration.ofMillis(100);

    private final Instant submittedAt;
    private final Clock clock;
    private final Map<String, Progress> byJobId = new LinkedHashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();

    OutcomeWatch(List<Submission.Job> jobs, Instant submittedAt, Clock clock) {
        this.submittedAt = submittedAt;
        this.clock = clock;
        jobs.forEach(j -> byJobId.put(j.jobId(), new Progress(j)));
    }

    /** What is known of one job; guarded by {@link #lock}. */
    private static final class Progress {
        final Submission.Job job;
        Instant capturedAt;
        Instant capturedSeen;
        String restorePointId;
        Instant committedSeen;
        final Map<String, Instant> replicas = new LinkedHashMap<>();
        Event failure;

        Progress(Submission.Job job) {
            this.job = job;
        }

        boolean reached(WaitLevel level) {
            return switch (level) {
                case CAPTURED -> capturedSeen != null;
                case COMMITTED -> committedSeen != null;
                case REPLICATED -> committedSeen != null && replicas.keySet().containsAll(job.targets());
            };
        }

        void captured(Instant at, Instant seen) {
            if (capturedSeen == null) {
                capturedAt = at;
                capturedSeen = seen;
            }
        }

        void committed(String id, Instant at, Instant seen) {
            captured(at, seen);
            if (committedSeen == null) {
                restorePointId = id;
                committedSeen = seen;
            }
        }
    }

    @Override
    public void handle(String topic, Event event) {
        Progress p = byJobId.get(event.jobId()); // the map's keys never change after construction
        if (p == null) {
            return;
        }
        Instant now = clock.instant();
        lock.lock();
        try {
            if (event.payload() instanceof SnapshotCaptured c) {
                p.captured(c.capturedAt(), now);
            } else if (event.payload() instanceof RestorePointCreated r) {
                p.committed(r.restorePointId(), r.capturedAt(), now);
            } else if (event.payload() instanceof ReplicaCommitted r) {
                p.committed(r.restorePointId(), r.capturedAt(), now);
                p.replicas.putIfAbsent(r.target(), now);
            } else if (event.payload() instanceof JobFailed
                    && !event.time().isBefore(submittedAt)
                    && p.failure == null) {
                p.failure = event;
            } else {
                return;
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits until every job reached {@code level}, one failed, or the clock reads {@code deadline}.
     *
     * @throws RetriableException if the waiting thread is interrupted (the engine is stopping)
     */
    HookResult await(WaitLevel level, Instant deadline) {
        lock.lock();
        try {
            while (true) {
                Instant now = clock.instant();
                Optional<Progress> failed = byJobId.values().stream()
                        .filter(p -> p.failure != null && !p.reached(level))
                        .findFirst();
                if (failed.isPresent()) {
                    return result(HookResult.Status.FAILED, level, now, failed);
                }
                if (byJobId.values().stream().allMatch(p -> p.reached(level))) {
                    return result(HookResult.Status.REACHED, level, now, Optional.empty());
                }
                if (!now.isBefore(deadline)) {
                    return result(HookResult.Status.TIMED_OUT, level, now, Optional.empty());
                }
                long nanos = Math.min(Duration.between(now, deadline).toNanos(), TICK.toNanos());
                changed.await(nanos, TimeUnit.NANOSECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while waiting for the pre-deploy snapshots", e);
        } finally {
            lock.unlock();
        }
    }

    private HookResult result(HookResult.Status status, WaitLevel level, Instant now, Optional<Progress> failed) {
        List<HookResult.VmResult> vms = new ArrayList<>();
        for (Progress p : byJobId.values()) {
            Optional<Duration> replicatedAfter = p.committedSeen != null
                            && !p.job.targets().isEmpty()
                            && p.replicas.keySet().containsAll(p.job.targets())
                    ? p.job.targets().stream()
                            .map(p.replicas::get)
                            .max(Instant::compareTo)
                            .map(this::since)
                    : Optional.empty();
            vms.add(new HookResult.VmResult(
                    p.job.vm(),
                    p.job.host(),
                    p.job.jobId(),
                    p.job.policy(),
                    p.job.targets(),
                    Optional.ofNullable(p.capturedAt),
                    Optional.ofNullable(p.restorePointId),
                    Optional.ofNullable(p.capturedSeen).map(this::since),
                    Optional.ofNullable(p.committedSeen).map(this::since),
                    replicatedAfter,
                    List.copyOf(p.replicas.keySet()),
                    p.reached(level)));
        }
        Optional<HookResult.Failure> failure = failed.map(p -> {
            JobFailed f = (JobFailed) p.failure.payload();
            return new HookResult.Failure(p.job.vm(), p.job.host(), p.job.jobId(), f.stage(), f.error(), f.retriable());
        });
        return new HookResult(status, level, submittedAt, since(now), vms, failure);
    }

    private Duration since(Instant seen) {
        Duration d = Duration.between(submittedAt, seen);
        return d.isNegative() ? Duration.ZERO : d;
    }
}
