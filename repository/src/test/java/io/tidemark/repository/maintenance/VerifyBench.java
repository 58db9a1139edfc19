package io.tidemark.repository.maintenance;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * {@code verify --deep} throughput on a file repository, against {@code sha256sum} of the same
 * bytes measured in the same run: the raw image (one file), and the stored chunk objects (the files
 * verify reads); and {@code openssl dgst -sha256} of the image, which uses the CPU's SHA
 * instructions as the JVM does (coreutils' {@code sha256sum} does not). Not a test: a {@code main} in test scope; best of {@code bench.reps} runs each,
 * interleaved, after one warm-up (so every figure reads from the page cache).
 *
 * <p>Run (see docs/benchmarks.md): {@code -Dbench.mib=256 -Dbench.reps=3}.
 */
public final class VerifyBench {

    private VerifyBench() {}

    public static void main(String[] args) throws Exception {
        int mib = Integer.getInteger("bench.mib", 256);
        int reps = Integer.getInteger("bench.reps", 3);
        Path dir = Files.createTempDirectory("tidemark-verify-bench");
        try {
            RepositoryConfig config = RepositoryConfig.defaults();
            Repository repo =
                    Repository.openOrInit(new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), config);
            Path image = dir.resolve("image.raw");
            long size = (long) mib << 20;
            int chunkSize = config.chunkSize();
            DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
            Random random = new Random(1);
            byte[] chunk = new byte[chunkSize];
            try (OutputStream out = Files.newOutputStream(image)) {
                for (long c = 0; c * chunkSize < size; c++) {
                    random.nextBytes(chunk); // incompressible: stored as is, like encrypted or media data
                    out.write(chunk);
                    index.set(c, repo.putChunk(chunk, chunkSize).digest());
                }
            }
            Instant at = Instant.now();
            repo.commit(new Manifest(
                    1,
                    RestorePointIds.next(at, random),
                    "bench",
                    "hv1",
                    "bench",
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    Trigger.manual(),
                    "bench",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda",
                            size,
                            chunkSize,
                            index.finish().hex(),
                            "tm",
                            Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                            0,
                            0))));
            String chunksDir = dir.resolve("repo/chunks").toString();
            String[] imageCmd = {"sha256sum", image.toString()};
            String[] opensslCmd = {"openssl", "dgst", "-sha256", image.toString()};
            String[] chunksCmd = {"sh", "-c", "find '" + chunksDir + "' -type f -print0 | xargs -0 sha256sum"};
            double bestImage = Double.MAX_VALUE;
            double bestChunks = Double.MAX_VALUE;
            double bestOpenssl = Double.MAX_VALUE;
            double bestV1 = Double.MAX_VALUE;
            double bestV2 = Double.MAX_VALUE;
            for (int r = 0; r <= reps; r++) { // r == 0 warms up
                double i = time(imageCmd);
                double c = time(chunksCmd);
                double o = time(opensslCmd);
                double v1 = verify(repo, 1, size);
                double v2 = verify(repo, 2, size);
                if (r > 0) {
                    bestImage = Math.min(bestImage, i);
                    bestChunks = Math.min(bestChunks, c);
                    bestOpenssl = Math.min(bestOpenssl, o);
                    bestV1 = Math.min(bestV1, v1);
                    bestV2 = Math.min(bestV2, v2);
                }
            }
            System.out.printf(
                    "%d MiB of random data in %d KiB chunks, best of %d, %d cores%n",
                    mib, chunkSize >> 10, reps, Runtime.getRuntime().availableProcessors());
            row("sha256sum image.raw (one file)", mib, bestImage, bestImage);
            row("sha256sum of the chunk objects (files)", mib, bestChunks, bestImage);
            row("openssl dgst -sha256 image.raw (SHA-NI)", mib, bestOpenssl, bestImage);
            row("verify --deep --parallel 1", mib, bestV1, bestImage);
            row("verify --deep --parallel 2", mib, bestV2, bestImage);
        } finally {
            FileTrees.delete(dir);
        }
    }

    private static void row(String what, int mib, double secs, double baseline) {
        System.out.printf(
                "| %s | %.2f s | %.0f MiB/s | %.2f× |%n", what, secs, mib / secs, (mib / secs) / (mib / baseline));
    }

    private static double verify(Repository repo, int parallel, long size) {
        long t0 = System.nanoTime();
        Verifier.Report r = new Verifier(Repository.open(repo.target()), parallel)
                .verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
        double secs = (System.nanoTime() - t0) / 1e9;
        if (!r.clean() || r.chunkBytesRead() != size) {
            throw new IllegalStateException("verify read " + r.chunkBytesRead() + " bytes, problems " + r.problems());
        }
        return secs;
    }

    private static double time(String... cmd) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectErrorStream(true)
                .start();
        if (p.waitFor() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " failed");
        }
        return (System.nanoTime() - t0) / 1e9;
    }
}
