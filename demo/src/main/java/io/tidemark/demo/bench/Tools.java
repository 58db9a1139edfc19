package io.tidemark.demo.bench;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** Runs the external programs of the benchmark (qemu-img, qemu-io, nbdcopy, restic). */
final class Tools {

    private Tools() {}

    /** Runs {@code cmd} to completion and returns its stdout; a non-zero exit is a permanent failure. */
    static String run(List<String> cmd, Map<String, String> env, long timeoutSeconds) {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        Path err;
        try {
            err = Files.createTempFile("tidemark-bench-", ".err");
        } catch (IOException e) {
            throw new RetriableException("cannot create a temporary file: " + e, e);
        }
        pb.redirectError(err.toFile());
        try {
            Process p = pb.start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new RetriableException(cmd.get(0) + " did not finish within " + timeoutSeconds + " s: " + cmd);
            }
            if (p.exitValue() != 0) {
                throw new PermanentException(cmd.get(0) + " failed (exit " + p.exitValue() + "): " + cmd + ": "
                        + Files.readString(err).trim());
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot run " + cmd.get(0) + " (" + e.getMessage() + "); run deploy/install-deps.sh to install it",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while running " + cmd, e);
        } finally {
            try {
                Files.deleteIfExists(err);
            } catch (IOException e) {
                // a leftover temporary file is harmless
            }
        }
    }

    static String run(String... cmd) {
        return run(List.of(cmd), Map.of(), 3600);
    }

    /** Bytes of all regular files under {@code dir} (a repository's size on disk, before block rounding). */
    static long treeBytes(Path dir) {
        if (!Files.exists(dir)) {
            return 0;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile)
                    .mapToLong(p -> {
                        try {
                            return Files.size(p);
                        } catch (IOException e) {
                            return 0; // removed while we walked
                        }
                    })
                    .sum();
        } catch (IOException e) {
            throw new RetriableException("cannot measure " + dir + ": " + e, e);
        }
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new RetriableException("cannot remove " + dir + ": " + e, e);
        }
    }
}
