package io.tidemark.recovery;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** Checks a dry run makes without changing anything. */
public final class DrChecks {

    private DrChecks() {}

    /** Whether an executable called {@code binary} is on PATH. */
    public static boolean onPath(String binary) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, binary))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Why files cannot be created under {@code dir} (which need not exist yet: its nearest existing
     * ancestor must be a writable directory), or empty when they can.
     */
    public static Optional<String> writable(Path dir) {
        Path p = dir.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            return Optional.of("no part of " + dir + " exists");
        }
        if (!Files.isDirectory(p)) {
            return Optional.of(p + " is not a directory, so " + dir + " cannot be created");
        }
        if (!Files.isWritable(p)) {
            return Optional.of(p + " is not writable, so disks cannot be written under " + dir);
        }
        return Optional.empty();
    }
}
