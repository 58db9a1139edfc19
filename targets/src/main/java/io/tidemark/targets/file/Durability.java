package io.tidemark.targets.file;

import io.tidemark.core.PermanentException;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How a {@link FileObjectTarget} makes a batch of deferred objects durable at its barrier (ADR 21,
 * ADR 25). The setting {@code durability:} of a directory target.
 */
public enum Durability {

    /**
     * The default (ADR 21): each object's temporary file is fsynced in the background as it is
     * written; the barrier waits for those fsyncs, links the names and fsyncs each touched directory.
     * Touches only the repository's own files, so it is right on a file system shared with VM images
     * or other tools.
     */
    PER_FILE("per-file"),

    /**
     * For a repository on a file system of its own (ADR 25): no fsync per object; the barrier calls
     * {@code syncfs(2)} once (every temporary file's bytes durable), links the names, then calls it
     * once more (the directory entries durable). {@code syncfs} flushes every dirty page of the
     * whole file system, so on a shared one it makes others' writes wait (and costs them).
     */
    FILESYSTEM("filesystem");

    /** The key in a {@code targets:} entry or the {@code repository:} mapping. */
    public static final String KEY = "durability";

    private final String configName;

    Durability(String configName) {
        this.configName = configName;
    }

    /** The name in the engine config and on the command line. */
    public String configName() {
        return configName;
    }

    /** The allowed values, for messages: {@code per-file, filesystem}. */
    public static String allowed() {
        return Arrays.stream(values()).map(Durability::configName).collect(Collectors.joining(", "));
    }

    /**
     * The durability named {@code text} ({@code null}: {@link #PER_FILE}).
     *
     * @throws PermanentException naming the key and the allowed values for any other text
     */
    public static Durability parse(String text) {
        if (text == null) {
            return PER_FILE;
        }
        String t = text.strip().toLowerCase(Locale.ROOT);
        for (Durability d : values()) {
            if (d.configName.equals(t)) {
                return d;
            }
        }
        throw new PermanentException("unknown " + KEY + " '" + text + "': expected one of " + allowed()
                + " (filesystem only for a repository on a file system of its own, docs/configuration.md)");
    }

    @Override
    public String toString() {
        return configName;
    }
}
