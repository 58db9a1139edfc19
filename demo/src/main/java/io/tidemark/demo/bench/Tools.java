package io.tidemark.demo.bench;

import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Runs the external programs of the benchmark (qemu-img, qemu-io, nbdcopy, restic). */
final class Tools {

    /** Bound on the captured stdout: JSON maps of large images (qemu-img map) run to megabytes. */
    private static final int STDOUT_LIMIT = 256 << 20;

    private Tools() {}

    /**
     * Runs {@code cmd} to completion and returns its stdout; a non-zero exit is a permanent failure
     * naming the command and the tail of its stderr, a timeout a retriable one (the child is killed).
     */
    static String run(List<String> cmd, Map<String, String> env, long timeoutSeconds) {
        ExternalCommand command = ExternalCommand.of(cmd)
                .timeout(Duration.ofSeconds(timeoutSeconds))
                .outputLimit(STDOUT_LIMIT)
                .ifMissing("run deploy/install-deps.sh to install it");
        env.forEach(command::env);
        return command.run().stdout();
    }

    static String run(String... cmd) {
        return run(List.of(cmd), Map.of(), 3600);
    }

    /** Whether {@code program} is an executable in a directory of {@code PATH}. */
    static boolean onPath(String program) {
        String path = System.getenv().getOrDefault("PATH", "");
        for (String d : path.split(java.io.File.pathSeparator)) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, program))) {
                return true;
            }
        }
        return false;
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
        try {
            FileTrees.delete(dir);
        } catch (IOException e) {
            throw new RetriableException("cannot remove " + dir + ": " + e, e);
        }
    }
}
