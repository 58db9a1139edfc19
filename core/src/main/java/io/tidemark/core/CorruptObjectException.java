package io.tidemark.core;

/** An object read from a repository failed its integrity check; it is never used silently. */
public class CorruptObjectException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final String key;

    public CorruptObjectException(String key, String why) {
        super("corrupt object " + key + ": " + why
                + " (run `tidemark verify` and restore from another target that holds a good copy)");
        this.key = key;
    }

    public String key() {
        return key;
    }
}
