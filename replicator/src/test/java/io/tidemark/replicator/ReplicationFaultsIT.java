package io.tidemark.replicator;

import static java.util.function.Function.identity;
import static java.util.stream.Collectors.counting;
import static java.util.stream.Collectors.groupingBy;
import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ManifestCodec;
import io.tidemark.format.ObjectCodec;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.fault.FaultyHttpProxy.Fault;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Replication through an unreliable network: S3Proxy behind a {@link FaultyHttpProxy} that answers
 * a seeded 20 % of requests with 500, 503 SlowDown, a stall past the client's timeout, a reset, or
 * a reset after the server did the work. The S3 client does not retry by itself; {@link
 * RetryingObjectTarget} does. Every restore point must arrive whole, restore bit-identically, and
 * never be visible on the target before all it references is there.
 */
class ReplicationFaultsIT {

    private static final Logger log = LoggerFactory.getLogger(ReplicationFaultsIT.class);

    private static final String BUCKET = "tidemark-faults";
    private static final String VM = "vm1";
    private static final int DISK_CHUNKS = 256;
    private static final RepositoryConfig REPOSITORY =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 16);

    private static EmbeddedS3 s3;
    private static FaultyHttpProxy proxy;

    @BeforeAll
    static void start() {
        s3 = EmbeddedS3.builder().build().start();
        s3.createBucket(BUCKET);
        proxy = FaultyHttpProxy.to(s3.endpoint())
                .seed(20261124)
                .faultRate(0.2)
                .stall(Duration.ofSeconds(3))
                .build()
                .start();
    }

    @AfterAll
    static void stop() {
        proxy.close();
        s3.close();
    }

    @Test
    void everyRestorePointArrivesWholeThroughFaultsAndNoneIsVisibleEarly(@TempDir Path tmp) throws Exception {
        Repository primary = Repository.openOrInit(new InMemoryObjectTarget("primary"), REPOSITORY);
        RestorePoints points = new RestorePoints(primary, VM, DISK_CHUNKS, 7).withImages();
        Random positions = new Random(11);
        List<Manifest> chain = new ArrayList<>();
        chain.add(points.full(distinct(positions, 48)));
        for (int i = 0; i < 4; i++) {
            chain.add(points.incremental(chain.get(i), distinct(positions, 12)));
        }
        S3Targets.Settings viaProxy = S3Targets.config(proxy.endpoint(), s3, BUCKET, "faults");

        try (S3Client client = S3Targets.withoutSdkRetries(viaProxy, Duration.ofSeconds(1));
                S3ObjectTarget direct =
                        S3Targets.config(s3.endpoint(), s3, BUCKET, "faults").open()) {
            ObjectTarget offsite = new RetryingObjectTarget(
                    new S3ObjectTarget(viaProxy.spec(), viaProxy.credentials(), client),
                    new RetryingObjectTarget.Backoff(
                            Duration.ofMillis(10), Duration.ofMillis(250), Duration.ofSeconds(30)));
            CompletenessReader reader = new CompletenessReader(direct, VM);
            Thread readerThread = new Thread(reader, "completeness-reader");
            readerThread.start();
            try (Replicator replicator = new Replicator(
                    primary, Map.of("offsite", offsite), new RecordingEventBus(), Clock.systemUTC(), 4)) {
                for (Manifest m : chain) {
                    Replicator.Result result = replicator.replicate(VM, m.id(), "offsite");

                    assertThat(result.alreadyThere()).isFalse();
                    assertThat(reader.check())
                            .as("restore points visible on the target before their data")
                            .isEmpty();
                }
            } finally {
                reader.stop();
                readerThread.join(TimeUnit.SECONDS.toMillis(30));
            }

            assertThat(reader.violations()).as("seen by the concurrent reader").isEmpty();
            assertThat(reader.polls()).as("reader passes").isPositive();
            assertThat(reader.verified()).hasSize(chain.size());
            Map<Fault, Long> injected = proxy.exchanges().stream()
                    .flatMap(e -> e.fault().stream())
                    .collect(groupingBy(identity(), counting()));
            assertThat(injected).as("faults injected").containsOnlyKeys(Fault.values());
            log.info(
                    "{} requests through the proxy, faults injected: {}; reader passes: {}",
                    proxy.exchanges().size(),
                    injected,
                    reader.polls());

            Repository remote = Repository.open(direct);
            assertThat(remote.manifests(VM))
                    .extracting(Manifest::id)
                    .containsExactlyElementsOf(chain.stream().map(Manifest::id).toList());
            // each point restored from the replica is the image that was written, by a checksum of
            // the generated bytes (not a restore from the primary through the same Restorer)
            for (Manifest m : chain) {
                String replica = restore(remote, m, tmp.resolve(m.id() + "-replica.img"));
                assertThat(replica)
                        .as("sha256 of %s restored from the replica", m.id())
                        .isEqualTo(points.sha256(m));
            }
        }
    }

    private static String restore(Repository repository, Manifest m, Path image) {
        return new Restorer(repository, 4)
                .restoreDisk(m, RestorePoints.DISK, image, Restorer.Progress.NONE)
                .sha256();
    }

    private static List<Integer> distinct(Random random, int n) {
        return random.ints(0, DISK_CHUNKS).distinct().limit(n).boxed().toList();
    }

    /**
     * Checks, over a connection without faults, that every manifest on the target references only
     * objects that are there: the root, its pages and their non-zero chunks. Runs as a polling
     * thread and on demand.
     */
    private static final class CompletenessReader implements Runnable {
        private static final Duration MAX_RUN = Duration.ofSeconds(120);

        private final ObjectTarget target;
        private final String vm;
        private final Set<String> present = ConcurrentHashMap.newKeySet();
        private final Set<String> verified = ConcurrentHashMap.newKeySet();
        private final Queue<String> violations = new ConcurrentLinkedQueue<>();
        private final CountDownLatch stopped = new CountDownLatch(1);
        private final AtomicInteger polls = new AtomicInteger();

        CompletenessReader(ObjectTarget target, String vm) {
            this.target = target;
            this.vm = vm;
        }

        @Override
        public void run() {
            long end = System.nanoTime() + MAX_RUN.toNanos();
            try {
                while (System.nanoTime() < end && !stopped.await(20, TimeUnit.MILLISECONDS)) {
                    check();
                    polls.incrementAndGet();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (RuntimeException e) {
                violations.add("the reader failed: " + e);
            }
        }

        void stop() {
            stopped.countDown();
        }

        int polls() {
            return polls.get();
        }

        Set<String> verified() {
            return Set.copyOf(verified);
        }

        List<String> violations() {
            return List.copyOf(violations);
        }

        /** One pass over the manifests not verified yet; returns (and records) what it found wrong. */
        synchronized List<String> check() {
            List<String> problems = new ArrayList<>();
            for (String key : target.list(ObjectKeys.manifestPrefix(vm))) {
                if (verified.contains(key)) {
                    continue;
                }
                Optional<byte[]> bytes = target.get(key);
                if (bytes.isEmpty()) {
                    continue; // listed a moment before it can be read (S3Proxy): not visible yet
                }
                Manifest m = ManifestCodec.decode(key, bytes.get());
                List<String> missing = missing(m);
                if (!missing.isEmpty()) {
                    problems.add(key + " is visible but " + missing.size() + " objects it references are not, e.g. "
                            + missing.get(0));
                }
                verified.add(key);
            }
            violations.addAll(problems);
            return problems;
        }

        private List<String> missing(Manifest m) {
            List<String> missing = new ArrayList<>();
            for (DiskEntry disk : m.disks()) {
                Digest rootDigest = Digest.fromHex(disk.index());
                Optional<byte[]> root = read(ObjectKeys.root(rootDigest), rootDigest, missing);
                if (root.isEmpty()) {
                    continue;
                }
                for (Digest pageDigest :
                        IndexRoot.parse(ObjectKeys.root(rootDigest), root.get()).pages()) {
                    Optional<byte[]> page = read(ObjectKeys.page(pageDigest), pageDigest, missing);
                    if (page.isEmpty()) {
                        continue;
                    }
                    IndexPage entries = IndexPage.parse(ObjectKeys.page(pageDigest), page.get());
                    for (int i = 0; i < entries.size(); i++) {
                        Digest chunk = entries.get(i);
                        String key = ObjectKeys.chunk(chunk);
                        if (!chunk.isZero() && !present.contains(key)) {
                            if (target.exists(key)) {
                                present.add(key);
                            } else {
                                missing.add(key);
                            }
                        }
                    }
                }
            }
            return missing;
        }

        private Optional<byte[]> read(String key, Digest digest, List<String> missing) {
            Optional<byte[]> object = target.get(key).map(bytes -> ObjectCodec.decode(key, bytes, digest));
            if (object.isEmpty()) {
                missing.add(key);
            }
            return object;
        }
    }
}
