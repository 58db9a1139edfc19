package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Digest;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.EpochLock;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.ceph.CephCluster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ExpirationStatus;
import software.amazon.awssdk.services.s3.model.LifecycleRule;

/**
 * {@code tidemark tier apply|check|sweep} against a real Ceph RGW (Pacific) with a GLACIER storage
 * class in its default placement (the set-up of RgwTierRulesIT: radosgw-admin placement add, then
 * the gateway restarted). The engine config names the RGW bucket as target {@code offsite}; the
 * policy {@code db} keeps points 30 d at offsite, then 1 y in GLACIER. Its own cluster: it changes
 * the zone group.
 */
class TierCommandIT {

    private static final String BUCKET = "tidemark-tier-cli";
    private static CephCluster ceph;
    private static S3Client raw;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @BeforeAll
    static void start(@TempDir Path dir) {
        ceph = CephCluster.start(dir.resolve("ceph"));
        ceph.addStorageClass("GLACIER"); // and restarts RGW, which learns a new class only at start
        ceph.createBucket(BUCKET, false);
        raw = ceph.newS3Client();
    }

    @AfterAll
    static void stop() {
        if (raw != null) {
            raw.close();
        }
        if (ceph != null) {
            ceph.close();
        }
    }

    /** An engine config naming the RGW bucket as {@code offsite} (prefix {@code prefix}), and the tiered policy. */
    private Path config(String prefix) throws Exception {
        Path access = Files.writeString(dir.resolve("s3.access"), ceph.s3AccessKey());
        Path secret = Files.writeString(dir.resolve("s3.secret"), ceph.s3SecretKey());
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-1]}
                schedule:
                  interval: 1h
                rpo: 2h
                targets: [offsite]
                tiers:
                  warm: {location: offsite, keep: 30d}
                  cold: {location: offsite, storage-class: GLACIER, keep: 1y}
                """);
        return Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                data: %s
                policies: %s
                targets:
                  offsite:
                    type: s3
                    endpoint: %s
                    region: %s
                    bucket: %s
                    prefix: %s
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 0s
                """
                        .formatted(
                                dir.resolve("data"),
                                policies,
                                ceph.rgwEndpoint(),
                                CephCluster.REGION,
                                BUCKET,
                                prefix,
                                access,
                                secret));
    }

    private JsonNode json() throws Exception {
        return Json.mapper().readTree(std.out());
    }

    @Test
    void applyPutsTheRulesCheckFindsThemAndForeignRulesAreRefusedByName() throws Exception {
        raw.deleteBucketLifecycle(r -> r.bucket(BUCKET));
        String config = config("rules").toString();

        assertThat(Main.execute("tier", "check", "--config", config, "--json")).isEqualTo(2);
        JsonNode before = json().get("targets").get(0);
        assertThat(before.get("target").asText()).isEqualTo("offsite");
        assertThat(before.get("inSync").asBoolean()).isFalse();
        assertThat(before.get("missing").toString()).isEqualTo("[\"GLACIER\"]");

        std.reset();
        assertThat(Main.execute("tier", "apply", "--config", config, "--json")).isZero();
        assertThat(json().get("targets").get(0).get("put").asBoolean()).isTrue();
        assertThat(raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules())
                .extracting(LifecycleRule::id)
                .containsExactly("tidemark-tier-GLACIER:rules/");

        std.reset();
        assertThat(Main.execute("tier", "check", "--config", config, "--json")).isZero();
        assertThat(json().get("inSync").asBoolean()).isTrue();
        assertThat(json().get("targets").get(0).get("missing")).isEmpty();

        // an operator's own rule next to Tidemark's: check reports it, apply of a change refuses naming it
        List<LifecycleRule> rules = new ArrayList<>(
                raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules());
        rules.add(LifecycleRule.builder()
                .id("expire-logs")
                .status(ExpirationStatus.ENABLED)
                .filter(f -> f.prefix("logs/"))
                .expiration(e -> e.days(30))
                .build());
        rules.removeIf(r -> r.id().startsWith("tidemark-")); // and Tidemark's went missing: apply must act
        raw.putBucketLifecycleConfiguration(r -> r.bucket(BUCKET).lifecycleConfiguration(c -> c.rules(rules)));

        std.reset();
        assertThat(Main.execute("tier", "check", "--config", config, "--json")).isEqualTo(2);
        assertThat(json().get("targets").get(0).get("foreign").toString()).isEqualTo("[\"expire-logs\"]");

        std.reset();
        assertThat(Main.execute("tier", "apply", "--config", config)).isEqualTo(2);
        assertThat(std.err()).contains("'expire-logs'").contains("--keep-foreign");
        assertThat(raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules())
                .extracting(LifecycleRule::id)
                .containsExactly("expire-logs"); // untouched

        std.reset();
        assertThat(Main.execute("tier", "apply", "--config", config, "--keep-foreign"))
                .isZero();
        assertThat(raw.getBucketLifecycleConfiguration(r -> r.bucket(BUCKET)).rules())
                .extracting(LifecycleRule::id)
                .containsExactlyInAnyOrder("expire-logs", "tidemark-tier-GLACIER:rules/");
        assertThat(Main.execute("tier", "check", "--config", config, "--keep-foreign"))
                .isZero();
        assertThat(Main.execute("tier", "check", "--config", config)).isEqualTo(2); // foreign rule present
    }

    @Test
    void sweepTagsTheChunksEveryReferencingPointAllowsToMove() throws Exception {
        Path config = config("sweep");
        Random random = new Random(11);
        byte[] onlyOld = bytes(random);
        byte[] shared = bytes(random);
        byte[] onlyYoung = bytes(random);
        Instant now = Instant.now();
        try (ObjectTarget t = EngineConfig.load(config).targets().get("offsite").open("offsite")) {
            Repository repo = Repository.openOrInit(t, RepositoryConfig.defaults());
            point(repo, random, now.minus(Duration.ofDays(60)), onlyOld, shared); // in the GLACIER tier
            point(repo, random, now.minus(Duration.ofDays(1)), shared, onlyYoung); // warm: holds `shared` back

            assertThat(Main.execute("tier", "sweep", "--config", config.toString(), "--json"))
                    .isZero();
            JsonNode r = json().get("targets").get(0);
            assertThat(r.get("target").asText()).isEqualTo("offsite");
            assertThat(r.get("chunks").asInt()).isEqualTo(3);
            assertThat(r.get("tagged").toString()).isEqualTo("{\"GLACIER\":1}");
            assertThat(r.get("untagged").asInt()).isZero();

            ColdStorage store = t.as(ColdStorage.class).orElseThrow();
            assertThat(store.tierTag(key(repo, onlyOld))).contains("GLACIER");
            assertThat(store.tierTag(key(repo, shared))).isEmpty();
            assertThat(store.tierTag(key(repo, onlyYoung))).isEmpty();

            std.reset(); // a second sweep changes nothing
            assertThat(Main.execute("tier", "sweep", "--config", config.toString()))
                    .isZero();
            assertThat(std.out()).contains("3 chunks, tagged none, untagged 0, 0 tags read"); // the ledger

            // a sweep already running at the target (an engine's): refused by its lock, nothing changed
            try (EpochLock held = EpochLock.acquire(
                    t, "state/tier/lock/", "tier sweep", Clock.systemUTC(), Duration.ofMinutes(10), "engine on hv1")) {
                std.reset();
                assertThat(Main.execute("tier", "sweep", "--config", config.toString()))
                        .isEqualTo(3);
                assertThat(std.err()).contains("another tier sweep").contains("engine on hv1");
            }
            std.reset();
            assertThat(Main.execute("tier", "sweep", "--config", config.toString()))
                    .isZero();
        }
    }

    @Test
    void aChunkAYoungPointNeedsAfterRgwMovedItToGlacierIsCopiedBackToStandard() throws Exception {
        Path config = config("rewarm");
        Random random = new Random(12);
        byte[] again = bytes(random);
        Instant now = Instant.now();
        try (ObjectTarget t = EngineConfig.load(config).targets().get("offsite").open("offsite")) {
            Repository repo = Repository.openOrInit(t, RepositoryConfig.defaults());
            point(repo, random, now.minus(Duration.ofDays(60)), again);
            assertThat(Main.execute("tier", "apply", "--config", config.toString(), "--keep-foreign"))
                    .isZero();
            assertThat(Main.execute("tier", "sweep", "--config", config.toString()))
                    .isZero();
            String key = key(repo, again);
            String s3Key = "rewarm/" + key;
            awaitLifecycleMoves(s3Key, "GLACIER");

            point(repo, random, now, again); // the same content again: deduplicated onto the moved chunk
            std.reset();
            assertThat(Main.execute("tier", "sweep", "--config", config.toString(), "--json"))
                    .isZero();
            JsonNode r = json().get("targets").get(0);
            assertThat(r.get("untagged").asInt()).isEqualTo(1);
            assertThat(r.get("rewarmed").asInt())
                    .as(r.toString())
                    .isEqualTo(1); // RGW has no RestoreObject: copied at once
            assertThat(r.get("rewarm")).isEmpty();
            var head = raw.headObject(h -> h.bucket(BUCKET).key(s3Key));
            assertThat(head.storageClassAsString()).isIn(null, "STANDARD");
            assertThat(t.as(ColdStorage.class).orElseThrow().tierTag(key)).isEmpty();
            Digest d = repo.putChunk(again, again.length).digest();
            assertThat(repo.chunk(d, again.length)).isEqualTo(again);
        }
    }

    /**
     * Runs RGW's lifecycle (a debug day is a second) until it has moved {@code s3Key} to {@code
     * storageClass}: one `lc process` may find a shard held by the daemon's own lifecycle thread and
     * skip it (a clean-clone CI run waited the whole minute after a single one).
     */
    private void awaitLifecycleMoves(String s3Key, String storageClass) {
        org.awaitility.Awaitility.await()
                .atMost(Duration.ofSeconds(90))
                .pollInterval(Duration.ofSeconds(2))
                .until(() -> {
                    ceph.radosgwAdmin("lc", "process", "--rgw-lc-debug-interval=1");
                    return storageClass.equals(
                            raw.headObject(r -> r.bucket(BUCKET).key(s3Key)).storageClassAsString());
                });
    }

    @Test
    void aPointWhoseChunkRgwMovedToGlacierRestoresWithColdWaitRequestingNoRestore() throws Exception {
        Path config = config("coldwait");
        Random random = new Random(16);
        byte[] cold = new byte[RepositoryConfig.defaults().chunkSize()]; // a whole chunk: the restore checks sizes
        random.nextBytes(cold);
        Instant now = Instant.now();
        try (ObjectTarget t = EngineConfig.load(config).targets().get("offsite").open("offsite")) {
            Repository repo = Repository.openOrInit(t, RepositoryConfig.defaults());
            point(repo, random, now.minus(Duration.ofDays(60)), cold);
            assertThat(Main.execute("tier", "apply", "--config", config.toString(), "--keep-foreign"))
                    .isZero();
            assertThat(Main.execute("tier", "sweep", "--config", config.toString()))
                    .isZero();
            String s3Key = "coldwait/" + key(repo, cold);
            awaitLifecycleMoves(s3Key, "GLACIER");
        }
        // RGW's GLACIER is an ordinary pool and RestoreObject answers 501: --cold-wait finds the chunk
        // readable as it is, requests nothing, and the restore reads the right bytes
        Path out = dir.resolve("coldwait-out");
        std.reset();
        int exit = Main.execute(
                "restore",
                "--config",
                config.toString(),
                "--from",
                "offsite",
                "--vm",
                "db-1",
                "--out",
                out.toString(),
                "--cold-wait",
                "1m",
                "--json");
        assertThat(exit).as(std.err()).isZero();
        JsonNode r = json();
        assertThat(r.path("coldRestore").path("chunks").asInt()).isEqualTo(1);
        assertThat(r.path("coldRestore").path("requested").asInt()).isZero();
        assertThat(r.path("coldRestore").path("archived").asInt()).isZero();
        assertThat(Files.readAllBytes(out.resolve("sda.raw"))).isEqualTo(cold);
    }

    private static byte[] bytes(Random random) {
        byte[] b = new byte[4096];
        random.nextBytes(b);
        return b;
    }

    private static String key(Repository repo, byte[] data) {
        return ObjectKeys.chunk(repo.putChunk(data, data.length).digest());
    }

    private static void point(Repository repo, Random random, Instant at, byte[]... chunks) {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex((long) chunks.length * chunk, Optional.empty());
        for (int i = 0; i < chunks.length; i++) {
            Digest d = repo.putChunk(chunks[i], chunks[i].length).digest();
            index.set(i, d);
        }
        repo.commit(new Manifest(
                1,
                RestorePointIds.next(at, random),
                "db-1",
                "hv1",
                "j-" + at,
                at,
                at,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "db",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda",
                        (long) chunks.length * chunk,
                        chunk,
                        index.finish().hex(),
                        "c",
                        Optional.empty(),
                        0,
                        0))));
    }
}
