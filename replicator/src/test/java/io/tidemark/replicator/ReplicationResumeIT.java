package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.repository.Manifest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.fault.FaultyHttpProxy.Exchange;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A replicator killed in the middle of an upload resumes without sending again what had arrived.
 * The first run is a child JVM that is SIGKILLed (no shutdown hooks, in-flight requests cut) once
 * S3Proxy has stored 60 of the 200 chunks; the second run is in this JVM. Both go through a
 * {@link FaultyHttpProxy} without faults, whose log is the server-side count of the PUTs that got
 * through.
 */
class ReplicationResumeIT {

    private static final Logger log = LoggerFactory.getLogger(ReplicationResumeIT.class);

    private static final String BUCKET = "tidemark-resume";
    private static final String PREFIX = "resume";
    private static final String VM = "vm1";
    private static final int CHUNKS = 200;
    private static final int KILL_AFTER = 60;
    private static final RepositoryConfig REPOSITORY =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 16);
    private static final String ACCESS_ENV = "TIDEMARK_TEST_S3_ACCESS_KEY";
    private static final String SECRET_ENV = "TIDEMARK_TEST_S3_SECRET_KEY";

    private static EmbeddedS3 s3;
    private static FaultyHttpProxy proxy;

    @BeforeAll
    static void start() {
        s3 = EmbeddedS3.builder().build().start();
        s3.createBucket(BUCKET);
        proxy = FaultyHttpProxy.to(s3.endpoint()).build().start();
    }

    @AfterAll
    static void stop() {
        proxy.close();
        s3.close();
    }

    @Test
    void aKilledReplicatorResumesWithoutResendingWhatArrived(@TempDir Path tmp) throws Exception {
        Path primaryDir = Files.createDirectories(tmp.resolve("primary"));
        Repository primary = Repository.openOrInit(new FileObjectTarget(primaryDir), REPOSITORY);
        RestorePoints points = new RestorePoints(primary, VM, 256, 5).withImages();
        Manifest big = points.full(CHUNKS);
        Set<String> allChunks = Set.copyOf(points.chunkKeys(big));
        assertThat(allChunks).hasSize(CHUNKS);

        // run 1: a child JVM, slowed to ~20 ms per request so that it is surely killed midway
        proxy.latency(Duration.ofMillis(20));
        Path childLog = tmp.resolve("child.log");
        Process child = startChild(primaryDir, big.id(), childLog);
        try {
            await("the child storing " + KILL_AFTER + " chunks")
                    .atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(5))
                    .until(() -> stored(proxy.exchanges()).size() >= KILL_AFTER || !child.isAlive());
            assertThat(child.isAlive())
                    .as("the child must still be uploading when killed; its log:%n%s", read(childLog))
                    .isTrue();
        } finally {
            child.destroyForcibly(); // SIGKILL
            assertThat(child.waitFor(10, TimeUnit.SECONDS)).isTrue();
        }
        await("requests cut by the kill to settle")
                .atMost(Duration.ofSeconds(10))
                .until(() -> proxy.inFlight() == 0);
        proxy.latency(Duration.ZERO);
        List<Exchange> firstRun = proxy.exchanges();
        Set<String> storedFirst = stored(firstRun);

        S3Targets.Settings direct = S3Targets.config(s3.endpoint(), s3, BUCKET, PREFIX);
        try (S3ObjectTarget target = direct.open()) {
            assertThat(storedFirst).hasSizeBetween(KILL_AFTER, CHUNKS - 1);
            assertThat(target.list(ObjectKeys.CHUNKS)).containsExactlyInAnyOrderElementsOf(storedFirst);
            assertThat(target.list(ObjectKeys.MANIFESTS))
                    .as("no manifest after the kill")
                    .isEmpty();
        }

        // run 2: a fresh replicator, as after a restart
        S3Targets.Settings viaProxy = S3Targets.config(proxy.endpoint(), s3, BUCKET, PREFIX);
        Replicator.Result result;
        try (RetryingObjectTarget offsite = new RetryingObjectTarget(
                        viaProxy.open(), RetryingObjectTarget.Backoff.upTo(Duration.ofSeconds(30)));
                Replicator replicator = new Replicator(
                        primary, Map.of("offsite", offsite), new RecordingEventBus(), Clock.systemUTC(), 4)) {
            result = replicator.replicate(VM, big.id(), "offsite");
        }
        List<Exchange> secondRun =
                proxy.exchanges().subList(firstRun.size(), proxy.exchanges().size());
        List<String> puts = secondRun.stream()
                .filter(e -> e.method().equals("PUT"))
                .map(ReplicationResumeIT::key)
                .filter(k -> !k.startsWith(ObjectKeys.STATE)) // the replicator's write lease
                .toList();
        List<String> chunkPuts =
                puts.stream().filter(k -> k.startsWith(ObjectKeys.CHUNKS)).toList();
        Set<String> missing = new HashSet<>(allChunks);
        missing.removeAll(storedFirst);

        assertThat(chunkPuts)
                .as("chunk PUTs of the second run")
                .doesNotContainAnyElementsOf(storedFirst)
                .containsExactlyInAnyOrderElementsOf(missing);
        assertThat(puts.stream().filter(k -> !k.startsWith(ObjectKeys.CHUNKS)))
                .as("the other PUTs: the config (already there), index pages, the root, the manifest")
                .allMatch(k -> k.equals(ObjectKeys.CONFIG)
                        || k.startsWith(ObjectKeys.PAGES)
                        || k.startsWith(ObjectKeys.ROOTS)
                        || k.startsWith(ObjectKeys.MANIFESTS))
                .contains(ObjectKeys.manifest(VM, big.id()));
        assertThat(secondRun.stream()
                        .filter(e -> e.method().equals("PUT") && e.upstreamStatus() == 200)
                        .filter(e -> !key(e).startsWith(ObjectKeys.STATE)))
                .hasSize((int) result.objectsSent());
        log.info(
                "killed after S3 stored {} of {} chunks; the second run sent {} chunks and {} other PUTs ({})",
                storedFirst.size(),
                CHUNKS,
                chunkPuts.size(),
                puts.size() - chunkPuts.size(),
                puts.stream()
                        .filter(k -> !k.startsWith(ObjectKeys.CHUNKS))
                        .map(k -> k.substring(0, k.indexOf('/') < 0 ? k.length() : k.indexOf('/')))
                        .collect(Collectors.groupingBy(k -> k, Collectors.counting())));

        try (S3ObjectTarget target = direct.open()) {
            // against a checksum of the bytes written, not a restore from the primary through the same Restorer
            assertThat(restore(Repository.open(target), big, tmp.resolve("replica.img")))
                    .isEqualTo(points.sha256(big));
        }
    }

    /** The chunk keys a successful PUT stored, by the proxy's log. */
    private static Set<String> stored(List<Exchange> exchanges) {
        return exchanges.stream()
                .filter(e -> e.method().equals("PUT") && e.upstreamStatus() == 200)
                .map(ReplicationResumeIT::key)
                .filter(k -> k.startsWith(ObjectKeys.CHUNKS))
                .collect(Collectors.toSet());
    }

    /** The object key of a path-style request {@code /bucket/prefix/key}. */
    private static String key(Exchange e) {
        String start = "/" + BUCKET + "/" + PREFIX + "/";
        assertThat(e.path()).startsWith(start);
        return e.path().substring(start.length());
    }

    private static String restore(Repository repository, Manifest m, Path image) {
        return new Restorer(repository, 4)
                .restoreDisk(m, RestorePoints.DISK, image, Restorer.Progress.NONE)
                .sha256();
    }

    private static Process startChild(Path primaryDir, String restorePointId, Path log) throws IOException {
        ProcessBuilder builder = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m",
                        "-cp",
                        System.getProperty("java.class.path"),
                        ChildReplicator.class.getName(),
                        primaryDir.toString(),
                        proxy.endpoint().toString(),
                        BUCKET,
                        PREFIX,
                        VM,
                        restorePointId)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        builder.environment().put(ACCESS_ENV, s3.accessKey());
        builder.environment().put(SECRET_ENV, s3.secretKey()); // not on the command line
        return builder.start();
    }

    private static String read(Path file) throws IOException {
        return Files.exists(file) ? Files.readString(file) : "(none)";
    }

    /** The first run's process: replicates one restore point from a file repository, window 4. */
    static final class ChildReplicator {
        private ChildReplicator() {}

        public static void main(String[] args) {
            S3Targets.Settings config = S3Targets.config(
                    URI.create(args[1]),
                    EmbeddedS3.REGION,
                    args[2],
                    args[3],
                    S3Credentials.of(System.getenv(ACCESS_ENV), System.getenv(SECRET_ENV)));
            Repository primary = Repository.open(new FileObjectTarget(Path.of(args[0])));
            try (RetryingObjectTarget offsite = new RetryingObjectTarget(
                            config.open(), RetryingObjectTarget.Backoff.upTo(Duration.ofSeconds(30)));
                    Replicator replicator = new Replicator(
                            primary, Map.of("offsite", offsite), new RecordingEventBus(), Clock.systemUTC(), 4)) {
                replicator.replicate(args[4], args[5], "offsite");
            }
        }
    }
}
