package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;

/**
 * A pre-deploy hook request that is malformed: a field is missing, empty, too long or of the wrong
 * type. The caller's input is at fault; {@link #field()} names the field.
 */
public final class InvalidHookException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final String field;

    public InvalidHookException(String field, String message) {
        super(message);
        this.field = field;
    }

    /** The request field at fault ({@code app}, {@code commit}, ...), or empty for the body as a whole. */
    public String field() {
        return field;
    }
}
