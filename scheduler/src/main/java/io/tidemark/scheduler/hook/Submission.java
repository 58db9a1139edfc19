package io.tidemark.scheduler.hook;

import io.tidemark.core.bus.EventBus;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The snapshot jobs one request published — a pre-deploy hook's, or a manual backup's — and, when
 * the request asked for a wait level, the watch on their outcome events that {@link
 * HookService#await} reads. The watch started before the first job was published, so it misses none
 * of their events. Closing the submission stops the watch (unless the service keeps it for a repeat
 * of the same backup request); it does not cancel the jobs. Thread-safe.
 */
public final class Submission implements AutoCloseable {

    /**
     * One published snapshot job.
     *
     * @param vm the VM
     * @param host the host it runs on (its job topic)
     * @param policy the policy the job runs under (the first by name, if several list the app; for a
     *     manual backup the named policy, or the first by name that selects the VM)
     * @param jobId the idempotency key, {@link HookService#jobId}
     * @param targets the replication targets the restore point must reach
     */
    public record Job(String vm, String host, String policy, String jobId, List<String> targets) {
        public Job {
            Objects.requireNonNull(vm, "vm");
            Objects.requireNonNull(host, "host");
            Objects.requireNonNull(policy, "policy");
            Objects.requireNonNull(jobId, "jobId");
            targets = List.copyOf(targets);
        }
    }

    private final String subject;
    private final Instant submittedAt;
    private final List<Job> jobs;
    private final OutcomeWatch watch;
    private volatile EventBus.Subscription subscription;
    private volatile boolean closed;

    Submission(
            String subject,
            Instant submittedAt,
            List<Job> jobs,
            OutcomeWatch watch,
            EventBus.Subscription subscription) {
        this.subject = subject;
        this.submittedAt = submittedAt;
        this.jobs = List.copyOf(jobs);
        this.watch = watch;
        this.subscription = subscription;
    }

    /**
     * What was submitted, in words for logs: {@code pre-deploy hook app=… commit=… pipeline=…} or
     * {@code backup vm=… request=…}.
     */
    public String subject() {
        return subject;
    }

    /** When the hook was submitted, on the service's clock; wait timeouts count from here. */
    public Instant submittedAt() {
        return submittedAt;
    }

    /** The jobs, in VM-name order; at least one. */
    public List<Job> jobs() {
        return jobs;
    }

    /** The job ids, in VM-name order. */
    public List<String> jobIds() {
        return jobs.stream().map(Job::jobId).toList();
    }

    /** True when the outcome events are watched, so {@link HookService#await} can be called. */
    public boolean watching() {
        return watch != null && !closed;
    }

    Optional<OutcomeWatch> watch() {
        return watching() ? Optional.of(watch) : Optional.empty();
    }

    /** Stops watching the outcome events; idempotent. The jobs go on. */
    @Override
    public void close() {
        closed = true;
        EventBus.Subscription s = subscription;
        subscription = null;
        if (s != null) {
            s.close();
        }
    }
}
