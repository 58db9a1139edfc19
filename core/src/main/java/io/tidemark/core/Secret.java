package io.tidemark.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A password (Kafka SASL, a key store, PostgreSQL), read from a file or
 * the environment, never from the engine config itself. {@link #toString()} never shows it.
 */
public final class Secret {

    private final String value;
    private final String source;

    private Secret(String value, String source) {
        this.value = value;
        this.source = source;
    }

    /**
     * Reads the secret from {@code file} if given, else from the environment variable {@code envName}.
     *
     * @param what what the secret is for, named in errors ("the SASL password")
     * @throws InvalidInputException when neither holds a value, saying where it was looked for
     * @throws PermanentException when the file cannot be read
     */
    public static Secret load(String what, Path file, String envName, Map<String, String> env) {
        if (file != null) {
            try {
                String v = Files.readString(file).strip();
                if (v.isEmpty()) {
                    throw new InvalidInputException(what + " file " + file + " is empty");
                }
                return new Secret(v, "file " + file);
            } catch (IOException e) {
                throw new PermanentException(
                        "cannot read " + what + " from " + file + ": " + e.getMessage()
                                + " (the file must be readable by the engine's user, mode 0600)",
                        e);
            }
        }
        String v = envName == null ? null : env.get(envName);
        if (v == null || v.isBlank()) {
            throw new InvalidInputException(what + " is not set: give a file (…File) or set the environment variable "
                    + (envName == null ? "(none named)" : envName));
        }
        return new Secret(v.strip(), "environment variable " + envName);
    }

    /** For tests and callers that hold the value already. */
    public static Secret of(String value, String source) {
        return new Secret(value, source);
    }

    /** The secret itself: only for handing to a client (Kafka, JDBC); never log it. */
    public String reveal() {
        return value;
    }

    /** Where the secret came from ("file /etc/tidemark/kafka.pass"), safe to log. */
    public String source() {
        return source;
    }

    @Override
    public String toString() {
        return "<secret from " + source + ">";
    }
}
