package io.tidemark.core.event;

/**
 * Why a job ended in {@link JobFailed}, for callers that branch on it (hooks, status, alerts); the
 * message says the details. On the wire it is the constant's name; a reader that does not know a
 * newer constant reads the event without a reason.
 */
public enum FailureReason {
    /** The job did not finish within the worker's job deadline; it was cancelled and commits nothing. */
    DEADLINE_EXCEEDED,
    /** An earlier job of the same VM still runs (its QEMU may be stopped or hung); nothing was started. */
    VM_BUSY,
    /** The job could not start before its {@code notAfter}; the next firing takes a new point. */
    EXPIRED,
    /** The VM is not on this host (any more). */
    VM_NOT_FOUND,
    /** The hypervisor could not capture the VM. */
    CAPTURE_FAILED,
    /** The policy requires application consistency and the capture achieved less. */
    CONSISTENCY_NOT_MET,
    /** The captured disks could not be read (NBD) or their chunks not stored. */
    EXPORT_FAILED,
    /** The primary repository refused or failed a read or write (lease, index, manifest). */
    REPOSITORY_FAILED,
    /** A replication target refused or failed. */
    TARGET_FAILED,
    /** The engine stopped before the job finished; the job is delivered again after the restart. */
    ENGINE_STOPPING,
    /** A fault that is a bug of the engine or of an adapter (not a translated error). */
    INTERNAL_ERROR
}
