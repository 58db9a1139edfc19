package io.tidemark.dist;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a command to its end with a deadline and keeps its exit code, stdout and stderr. */
record Sh(int rc, String out, String err) {

    static Sh run(List<String> command) {
        return run(command, null);
    }

    static Sh run(List<String> command, Path dir) {
        try {
            Path out = Files.createTempFile("tidemark-dist-out", ".txt");
            Path err = Files.createTempFile("tidemark-dist-err", ".txt");
            try {
                ProcessBuilder pb = new ProcessBuilder(command)
                        .redirectOutput(out.toFile())
                        .redirectError(err.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                if (dir != null) {
                    pb.directory(dir.toFile());
                }
                Process p = pb.start();
                if (!p.waitFor(5, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    throw new AssertionError("still running after 5 min: " + command);
                }
                return new Sh(
                        p.exitValue(),
                        Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + command, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while running " + command, e);
        }
    }

    static Sh run(String... command) {
        return run(List.of(command));
    }

    /** Fails with the command's output unless it exited 0. */
    Sh ok() {
        if (rc != 0) {
            throw new AssertionError("exit " + rc + "\nstdout: " + out + "\nstderr: " + err);
        }
        return this;
    }
}
