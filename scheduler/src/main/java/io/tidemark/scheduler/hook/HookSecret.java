package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * The shared secret that signs pre-deploy hook requests: the bytes of its UTF-8 text, without
 * surrounding whitespace, at least {@link #MIN_BYTES} long. It is read from a file or an
 * environment variable and never appears in {@link #toString()}, logs or events.
 */
public final class HookSecret {

    /** The shortest secret accepted, in bytes. */
    public static final int MIN_BYTES = 16;

    private static final String HOW =
            "; generate one with `openssl rand -hex 32` and keep it in a file readable only by Tidemark";

    private final byte[] key;

    private HookSecret(byte[] key) {
        this.key = key;
    }

    /**
     * The secret {@code text}, stripped of surrounding whitespace.
     *
     * @throws PermanentException if it is shorter than {@link #MIN_BYTES} bytes ({@code source}
     *     names where it came from)
     */
    public static HookSecret of(String text, String source) {
        byte[] key = text.strip().getBytes(StandardCharsets.UTF_8);
        if (key.length < MIN_BYTES) {
            throw new PermanentException(
                    "the pre-deploy hook secret in " + source + " is shorter than " + MIN_BYTES + " bytes" + HOW);
        }
        return new HookSecret(key);
    }

    /**
     * The secret held by {@code file}.
     *
     * @throws PermanentException if the file cannot be read or holds too short a secret
     */
    public static HookSecret fromFile(Path file) {
        try {
            return of(Files.readString(file, StandardCharsets.UTF_8), "file " + file);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot read the pre-deploy hook secret file " + file + ": "
                            + e.getClass().getSimpleName() + HOW,
                    e);
        }
    }

    /**
     * The secret held by environment variable {@code name} of {@code env}.
     *
     * @throws PermanentException if the variable is unset or holds too short a secret
     */
    public static HookSecret fromEnv(String name, Map<String, String> env) {
        String value = env.get(name);
        if (value == null || value.isBlank()) {
            throw new PermanentException("environment variable " + name + " holds no pre-deploy hook secret" + HOW);
        }
        return of(value, "environment variable " + name);
    }

    /**
     * The secret of {@code file} if given, else of environment variable {@code envName} of {@code
     * env}.
     *
     * @throws PermanentException if neither is given or the one given holds no usable secret
     */
    public static HookSecret load(Path file, String envName, Map<String, String> env) {
        if (file != null) {
            return fromFile(file);
        }
        if (envName != null && !envName.isBlank()) {
            return fromEnv(envName, env);
        }
        throw new PermanentException(
                "no pre-deploy hook secret configured: give a secret file or an environment" + " variable" + HOW);
    }

    /** A copy of the key bytes. */
    byte[] key() {
        return Arrays.copyOf(key, key.length);
    }

    /** Never the secret. */
    @Override
    public String toString() {
        return "HookSecret[redacted]";
    }
}
