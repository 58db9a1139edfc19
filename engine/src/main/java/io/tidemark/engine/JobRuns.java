package io.tidemark.engine;

import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The rows of {@code tidemark jobs}: the events of a {@link JobHistory} grouped by job id, one
 * {@link Run} per job, in the order the jobs first appeared.
 */
public final class JobRuns {

    private JobRuns() {}

    /** How a job ended, as far as the history knows. */
    public enum State {
        /** Published (or seen) and not yet captured. */
        PENDING,
        /** The point in time is captured; the restore point is not committed yet. */
        CAPTURED,
        /** The restore point is committed in the primary repository. */
        COMMITTED,
        /** The job failed (the newest outcome is a {@link JobFailed}). */
        FAILED
    }

    /**
     * A failure.
     *
     * @param at when it was reported
     * @param stage the stage reached
     * @param reason the typed reason, when the event carries one
     * @param error the message
     * @param retriable whether the same job may succeed later
     */
    public record Failure(Instant at, String stage, Optional<FailureReason> reason, String error, boolean retriable) {}

    /**
     * A replica of the job's restore point on a target.
     *
     * @param target the target
     * @param at when it was committed there
     * @param bytesSent bytes shipped for it
     */
    public record Replica(String target, Instant at, long bytesSent) {}

    /**
     * One job.
     *
     * @param jobId the job id
     * @param vm the VM
     * @param host the host, when the job itself was recorded
     * @param policy the policy
     * @param trigger why (the firing), when the job itself was recorded
     * @param scheduledFor the firing's time, when the job itself was recorded
     * @param publishedAt when the job was published, when recorded
     * @param capturedAt the snapshot moment, once captured
     * @param committedAt when the restore point was announced
     * @param restorePointId the restore point, once committed
     * @param bytesRead bytes read from the disks
     * @param bytesNew bytes of chunks the repository did not hold yet
     * @param replicas the targets it reached, in order
     * @param failure the last failure, if the job's newest outcome is one
     * @param lastAt the time of the job's newest event
     */
    public record Run(
            String jobId,
            String vm,
            Optional<String> host,
            Optional<String> policy,
            Optional<Trigger> trigger,
            Optional<Instant> scheduledFor,
            Optional<Instant> publishedAt,
            Optional<Instant> capturedAt,
            Optional<Instant> committedAt,
            Optional<String> restorePointId,
            long bytesRead,
            long bytesNew,
            List<Replica> replicas,
            Optional<Failure> failure,
            Instant lastAt) {

        public Run {
            replicas = List.copyOf(replicas);
        }

        public State state() {
            if (failure.isPresent()) {
                return State.FAILED;
            }
            if (restorePointId.isPresent()) {
                return State.COMMITTED;
            }
            return capturedAt.isPresent() ? State.CAPTURED : State.PENDING;
        }

        /** When the job began: its publication, else its firing, else its first event. */
        public Instant startedAt() {
            return publishedAt.or(() -> scheduledFor).orElse(lastAt);
        }

        /** From the start to the commit or the failure; empty while the job runs. */
        public Optional<Duration> duration() {
            Optional<Instant> end = failure.map(Failure::at).or(() -> committedAt);
            return end.map(e -> Duration.between(startedAt(), e)).filter(d -> !d.isNegative());
        }
    }

    /** One run per job id of {@code events} (oldest first), in the order the jobs first appeared. */
    public static List<Run> of(List<Event> events) {
        Map<String, Builder> byJob = new LinkedHashMap<>();
        for (Event e : events) {
            if (!JobHistory.recorded(e)) {
                continue;
            }
            byJob.computeIfAbsent(e.jobId(), id -> new Builder(id, e.payload().vm()))
                    .add(e);
        }
        List<Run> runs = new ArrayList<>();
        byJob.values().forEach(b -> runs.add(b.build()));
        return runs;
    }

    private static final class Builder {
        final String jobId;
        final String vm;
        String host;
        String policy;
        Trigger trigger;
        Instant scheduledFor;
        Instant publishedAt;
        Instant capturedAt;
        Instant committedAt;
        String restorePointId;
        long bytesRead;
        long bytesNew;
        final Map<String, Replica> replicas = new LinkedHashMap<>();
        Failure failure;
        Instant lastAt;

        Builder(String jobId, String vm) {
            this.jobId = jobId;
            this.vm = vm;
        }

        void add(Event e) {
            lastAt = lastAt == null || e.time().isAfter(lastAt) ? e.time() : lastAt;
            if (e.payload() instanceof SnapshotJob j) {
                host = j.host();
                policy = j.policy();
                trigger = j.trigger();
                scheduledFor = j.scheduledFor();
                publishedAt = publishedAt == null ? e.time() : publishedAt; // a republished job keeps its start
            } else if (e.payload() instanceof SnapshotCaptured c) {
                capturedAt = c.capturedAt();
                failure = null;
            } else if (e.payload() instanceof RestorePointCreated r) {
                capturedAt = r.capturedAt();
                committedAt = committedAt == null ? e.time() : committedAt;
                restorePointId = r.restorePointId();
                policy = policy == null ? r.policy() : policy;
                if (r.bytesRead() > 0 || r.bytesNew() > 0) { // a re-announcement of a done job may say 0
                    bytesRead = r.bytesRead();
                    bytesNew = r.bytesNew();
                }
                failure = null;
            } else if (e.payload() instanceof ReplicaCommitted r) {
                replicas.putIfAbsent(r.target(), new Replica(r.target(), e.time(), r.bytesSent()));
                failure = null;
            } else if (e.payload() instanceof JobFailed f) {
                failure = new Failure(e.time(), f.stage(), f.reason(), f.error(), f.retriable());
            }
        }

        Run build() {
            return new Run(
                    jobId,
                    vm,
                    Optional.ofNullable(host),
                    Optional.ofNullable(policy),
                    Optional.ofNullable(trigger),
                    Optional.ofNullable(scheduledFor),
                    Optional.ofNullable(publishedAt),
                    Optional.ofNullable(capturedAt),
                    Optional.ofNullable(committedAt),
                    Optional.ofNullable(restorePointId),
                    bytesRead,
                    bytesNew,
                    new ArrayList<>(replicas.values()),
                    Optional.ofNullable(failure),
                    lastAt);
        }
    }
}
