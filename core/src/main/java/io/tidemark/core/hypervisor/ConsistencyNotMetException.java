package io.tidemark.core.hypervisor;

import io.tidemark.core.PermanentException;

/**
 * A capture that requires application consistency ({@link Quiesce#REQUIRED}) could not get it (no
 * guest agent, the freeze failed). An adapter throws it instead of a plain {@link
 * PermanentException} so that the worker reports {@link
 * io.tidemark.core.event.FailureReason#CONSISTENCY_NOT_MET}.
 */
public class ConsistencyNotMetException extends PermanentException {
    private static final long serialVersionUID = 1L;

    public ConsistencyNotMetException(String message) {
        super(message);
    }

    public ConsistencyNotMetException(String message, Throwable cause) {
        super(message, cause);
    }
}
