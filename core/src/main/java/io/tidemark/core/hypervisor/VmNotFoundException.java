package io.tidemark.core.hypervisor;

import io.tidemark.core.PermanentException;

/**
 * The VM a capture asked for is not on this host (it was removed, renamed or migrated away). An
 * adapter throws it instead of a plain {@link PermanentException} so that the worker reports
 * {@link io.tidemark.core.event.FailureReason#VM_NOT_FOUND}.
 */
public class VmNotFoundException extends PermanentException {
    private static final long serialVersionUID = 1L;

    public VmNotFoundException(String message) {
        super(message);
    }

    public VmNotFoundException(String message, Throwable cause) {
        super(message, cause);
    }
}
