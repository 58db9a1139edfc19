package io.tidemark.targets;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a secret of a target (an S3 key, a cephx key) is read from: an environment variable or a
 * file (mode 0600). The secret itself is never written in a config or a spec, and never appears in
 * {@link #toString()}, which names only the variable or file.
 *
 * @param env the environment variable; read instead of {@code file} when both are given
 * @param file the file, read whole and stripped of surrounding white space
 */
public record SecretSource(String env, Path file) {

    /** Needs a variable or a file. */
    public SecretSource {
        if (env == null && file == null) {
            throw new PermanentException("a secret needs an environment variable or a file");
        }
    }

    /** From {@code env} or else {@code file}; {@code null} when neither is given. */
    public static SecretSource of(String env, String file) {
        return env == null && file == null ? null : new SecretSource(env, file == null ? null : Path.of(file));
    }

    /** The secret in environment variable {@code env}. */
    public static SecretSource env(String env) {
        return new SecretSource(env, null);
    }

    /**
     * The secret.
     *
     * @param target the target's name, for messages
     * @param what what the secret is, for messages ({@code secret key})
     * @throws PermanentException when the variable is not set or the file cannot be read
     */
    public String read(String target, String what) {
        if (env != null) {
            String v = System.getenv(env);
            if (v == null || v.isEmpty()) {
                throw new PermanentException("target '" + target + "': the " + what
                        + " comes from environment variable " + env + ", which is not set");
            }
            return v;
        }
        try {
            return Files.readString(file).strip();
        } catch (IOException e) {
            throw new PermanentException(
                    "target '" + target + "': cannot read the " + what + " from " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * The secret of {@code source}.
     *
     * @throws PermanentException when {@code source} is null: no setting names the secret
     */
    static String require(SecretSource source, String target, String what) {
        if (source == null) {
            throw new PermanentException("target '" + target + "': no " + what + "; set " + what.replace(' ', '-')
                    + " via an *Env or *File setting (secrets never go into config or policy files)");
        }
        return source.read(target, what);
    }

    /**
     * Where the secret was read from, naming the config key the operator used: {@code from the file
     * /etc/… , set by secretKeyFile of target 'offsite'}.
     *
     * @param setting the config key without its Env/File ending, such as {@code secretKey}
     */
    public String describe(String target, String setting) {
        return env != null
                ? "from environment variable " + env + ", set by " + setting + "Env of target '" + target + "'"
                : "from the file " + file + ", set by " + setting + "File of target '" + target + "'";
    }
}
