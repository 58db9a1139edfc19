package io.tidemark.core;

/**
 * A fault that retrying will not fix: bad input, a missing VM, a corrupt object, a refused
 * credential. The message says what failed, where, and what to do next.
 */
public non-sealed class PermanentException extends TidemarkException {
    private static final long serialVersionUID = 1L;

    public PermanentException(String message) {
        super(message, null);
    }

    public PermanentException(String message, Throwable cause) {
        super(message, cause);
    }

    @Override
    public boolean retriable() {
        return false;
    }
}
