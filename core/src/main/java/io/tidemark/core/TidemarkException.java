package io.tidemark.core;

/**
 * Root of the two error kinds callers branch on. Adapters translate every SDK, Kafka, QMP or I/O
 * exception into one of the two subclasses at the port boundary; nothing else crosses a port.
 */
public abstract sealed class TidemarkException extends RuntimeException permits RetriableException, PermanentException {
    private static final long serialVersionUID = 1L;

    protected TidemarkException(String message, Throwable cause) {
        super(message, cause);
    }

    /** True when the same call may succeed if tried again later (a timeout, a 503, a lost connection). */
    public abstract boolean retriable();
}
