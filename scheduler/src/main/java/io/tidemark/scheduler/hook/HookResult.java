package io.tidemark.scheduler.hook;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * How a wait for a pre-deploy hook ended: every job reached the {@link WaitLevel} ({@link
 * Status#REACHED}), one failed first ({@link Status#FAILED}, with the {@link Failure}), or the
 * timeout passed ({@link Status#TIMED_OUT}). In every case {@link #vms()} tells how far each VM got.
 *
 * @param status how the wait ended
 * @param level the level waited for
 * @param submittedAt when the hook was submitted
 * @param elapsed from submission to the end of the wait, on the service's clock
 * @param vms one entry per job, in VM-name order
 * @param failure the failed job, when {@code status} is {@link Status#FAILED}
 */
public record HookResult(
        Status status,
        WaitLevel level,
        Instant submittedAt,
        Duration elapsed,
        List<VmResult> vms,
        Optional<Failure> failure) {

    public HookResult {
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(level, "level");
        Objects.requireNonNull(submittedAt, "submittedAt");
        Objects.requireNonNull(elapsed, "elapsed");
        vms = List.copyOf(vms);
        Objects.requireNonNull(failure, "failure");
        if ((status == Status.FAILED) != failure.isPresent()) {
            throw new IllegalArgumentException("a failure is given exactly when the status is FAILED");
        }
    }

    /** How a wait ended. */
    public enum Status {
        REACHED("reached"),
        FAILED("failed"),
        TIMED_OUT("timed-out");

        private final String wireName;

        Status(String wireName) {
            this.wireName = wireName;
        }

        public String wireName() {
            return wireName;
        }
    }

    /**
     * How far one VM's job got. Durations count from the submission to when the service saw the
     * event; a VM whose restore point already existed (the same hook before) shows zero.
     *
     * @param vm the VM
     * @param host its host
     * @param jobId the job id
     * @param policy the policy the job ran under
     * @param targets the replication targets it must reach
     * @param capturedAt the snapshot moment, once known
     * @param restorePointId the restore point, once committed
     * @param capturedAfter when the capture was seen
     * @param committedAfter when the commit was seen
     * @param replicatedAfter when the last target's replica was seen
     * @param replicatedTo the targets holding the restore point, in the order seen
     * @param reached whether this job reached the level waited for
     */
    public record VmResult(
            String vm,
            String host,
            String jobId,
            String policy,
            List<String> targets,
            Optional<Instant> capturedAt,
            Optional<String> restorePointId,
            Optional<Duration> capturedAfter,
            Optional<Duration> committedAfter,
            Optional<Duration> replicatedAfter,
            List<String> replicatedTo,
            boolean reached) {
        public VmResult {
            targets = List.copyOf(targets);
            replicatedTo = List.copyOf(replicatedTo);
        }
    }

    /**
     * The job that failed.
     *
     * @param vm its VM
     * @param host the VM's host
     * @param jobId the job id
     * @param stage where it failed ({@code backup}, {@code replicate}, ...)
     * @param error the worker's or replicator's message
     * @param retriable whether the engine retries the job by itself
     */
    public record Failure(String vm, String host, String jobId, String stage, String error, boolean retriable) {}

    /** True when every job reached the level. */
    public boolean reached() {
        return status == Status.REACHED;
    }

    /** One line for a person: what happened and, when it did not work, what to do. */
    public String summary() {
        String verb = level.wireName();
        return switch (status) {
            case REACHED ->
                vms.size() + (vms.size() == 1 ? " VM " : " VMs ") + verb + " in " + seconds(elapsed)
                        + "; the deploy may proceed";
            case FAILED -> {
                Failure f = failure.orElseThrow();
                yield "snapshot of VM " + f.vm() + " failed at " + f.stage() + ": " + f.error() + " (job " + f.jobId()
                        + (f.retriable() ? "; the engine retries it: run the hook again to wait for the retry)" : ")")
                        + "; do not deploy; check the worker log on host " + f.host()
                        + " and `tidemark status`";
            }
            case TIMED_OUT ->
                "timed out after " + seconds(elapsed) + " waiting for "
                        + vms.stream()
                                .filter(v -> !v.reached())
                                .map(VmResult::vm)
                                .collect(Collectors.joining(", "))
                        + " to be " + verb + "; do not deploy; check that the workers of hosts "
                        + vms.stream()
                                .filter(v -> !v.reached())
                                .map(VmResult::host)
                                .distinct()
                                .collect(Collectors.joining(", "))
                        + " run (`tidemark status`), then run the hook again (it reuses the jobs) or raise the"
                        + " timeout";
        };
    }

    private static String seconds(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }
}
