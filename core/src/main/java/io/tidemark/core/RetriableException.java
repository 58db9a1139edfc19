package io.tidemark.core;

/** A transient fault: the operation may succeed when retried with backoff before a deadline. */
public non-sealed class RetriableException extends TidemarkException {
    private static final long serialVersionUID = 1L;

    public RetriableException(String message) {
        super(message, null);
    }

    public RetriableException(String message, Throwable cause) {
        super(message, cause);
    }

    @Override
    public boolean retriable() {
        return true;
    }
}
