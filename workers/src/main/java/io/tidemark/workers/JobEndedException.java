package io.tidemark.workers;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.FailureReason;

/**
 * A job of the worker ended for a reason the worker decided itself (its deadline, a busy VM, an
 * expired job, a consistency the policy requires and the capture did not achieve, a stopping
 * engine), as opposed to an error of the hypervisor or the repository. Only the consistency case
 * leaves the worker (from {@link BackupWorker#backup}); the others become {@code JobFailed}.
 */
final class JobEndedException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final FailureReason reason;
    private final RunningJob.Stage stage;
    private final boolean mayRunAgain;

    JobEndedException(FailureReason reason, RunningJob.Stage stage, String message, boolean mayRunAgain) {
        super(message);
        this.reason = reason;
        this.stage = stage;
        this.mayRunAgain = mayRunAgain;
    }

    FailureReason reason() {
        return reason;
    }

    RunningJob.Stage stage() {
        return stage;
    }

    /** Whether the same job may succeed later (the {@code retriable} of its {@code JobFailed}). */
    boolean mayRunAgain() {
        return mayRunAgain;
    }
}
