package io.tidemark.format;

import io.tidemark.core.PermanentException;
import java.util.Arrays;

/**
 * The passphrase of an encrypted repository. It only derives the key that wraps the master keys;
 * it is never stored, logged or printed: {@link #toString()} is redacted.
 */
public final class Passphrase {

    private final char[] chars;

    private Passphrase(char[] chars) {
        this.chars = chars;
    }

    /**
     * A passphrase from text; surrounding whitespace (a file's trailing newline) is not part of it.
     *
     * @param source where it came from (a variable or file name), for the error when it is empty
     * @throws PermanentException if it is empty
     */
    public static Passphrase of(String text, String source) {
        String stripped = text == null ? "" : text.strip();
        if (stripped.isEmpty()) {
            throw new PermanentException("the passphrase from " + source + " is empty; put the passphrase there");
        }
        return new Passphrase(stripped.toCharArray());
    }

    /** A copy of the characters, for the key derivation; the caller clears it. */
    char[] chars() {
        return chars.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Passphrase p && Arrays.equals(chars, p.chars);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(chars);
    }

    @Override
    public String toString() {
        return "Passphrase[redacted]";
    }
}
