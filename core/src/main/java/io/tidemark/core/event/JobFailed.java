package io.tidemark.core.event;

import java.util.Objects;
import java.util.Optional;

/**
 * A job ended without its outcome. Published once per job and attempt cycle: the worker retries
 * inside the job first, so a {@code JobFailed} is final for this delivery.
 *
 * @param vm the VM
 * @param stage the stage the job had reached: {@code queued} (waiting to start), {@code prepare},
 *     {@code capture}, {@code export}, {@code commit} or {@code replicate}; events written before
 *     stages were reported say {@code backup}
 * @param error what failed and what to do next, never a secret
 * @param retriable whether the same job may succeed later (the next firing tries again)
 * @param reason why, typed; empty in events written before reasons existed (or with a reason this
 *     reader does not know)
 */
public record JobFailed(String vm, String stage, String error, boolean retriable, Optional<FailureReason> reason)
        implements EventPayload {

    public JobFailed {
        Objects.requireNonNull(reason, "reason");
    }

    /** A failure without a typed reason, as written before reasons existed. */
    public JobFailed(String vm, String stage, String error, boolean retriable) {
        this(vm, stage, error, retriable, Optional.empty());
    }

    /** A failure with its typed reason. */
    public static JobFailed of(String vm, String stage, FailureReason reason, String error, boolean retriable) {
        return new JobFailed(vm, stage, error, retriable, Optional.of(reason));
    }
}
