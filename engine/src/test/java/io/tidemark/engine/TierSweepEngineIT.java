package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.replicator.TierSweeps;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.EpochLock;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.workers.CaptureHooks;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine's replicator role sweeps the tier tags by itself (ADR 20), on a real Ceph RGW (Pacific)
 * with a GLACIER storage class: a chunk only an old point needs is tagged, one a young point shares
 * is not; a new young point that needs the tagged chunk makes the next round untag it, reading only
 * that tag (the ledger); a tier-sweep lock held by someone else (as {@code tidemark tier sweep}
 * holds it) makes the round fail, shown as {@code tidemark_tier_sweep_ok 0}, and the round after it
 * succeeds; a restarted engine's first round reads no tag (the ledger is at the target). A second
 * target that does not answer (a closed port, retry deadline 0) fails its sweeps without holding
 * up the first target's or the scrape.
 */
class TierSweepEngineIT {

    private static final String BUCKET = "tidemark-tier-engine";
    private static final Duration DEADLINE = Duration.ofSeconds(180);
    private static final String TOKEN = "tier-engine-it-status-token-0123456789";

    @TempDir
    Path dir;

    private final Random random = new Random(20);

    @Test
    void theEngineTagsTheRightChunkUntagsItWhenAYoungPointNeedsItAndKeepsToTheLock() throws Exception {
        try (CephCluster ceph = CephCluster.start(dir.resolve("ceph"))) {
            ceph.addStorageClass("GLACIER"); // and restarts RGW, which learns a new class only at start
            ceph.createBucket(BUCKET, false);
            Path configFile = config(ceph, closedPort());
            EngineConfig config = EngineConfig.load(configFile);

            byte[] onlyOld = bytes();
            byte[] shared = bytes();
            byte[] onlyYoung = bytes();
            Instant now = Instant.now();
            try (ObjectTarget t = config.targets().get("offsite").open("offsite")) {
                // the engine's primary first, so the target holds a replica of it
                Repository primary = Repository.openOrInit(
                        new io.tidemark.targets.file.FileObjectTarget(
                                Files.createDirectories(dir.resolve("data").resolve("repo"))),
                        RepositoryConfig.defaults());
                Repository repo = primary.replicaOn(t);
                point(repo, now.minus(Duration.ofDays(60)), onlyOld, shared); // in the GLACIER tier
                point(repo, now.minus(Duration.ofDays(1)), shared, onlyYoung); // warm: holds `shared` back
                ColdStorage store = t.as(ColdStorage.class).orElseThrow();

                try (Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC())) {
                    await().atMost(DEADLINE)
                            .until(() -> store.tierTag(key(repo, onlyOld)).isPresent());
                    assertThat(store.tierTag(key(repo, onlyOld))).contains("GLACIER");
                    assertThat(store.tierTag(key(repo, shared))).isEmpty();
                    assertThat(store.tierTag(key(repo, onlyYoung))).isEmpty();
                    String text =
                            awaitMetrics(engine, m -> sample(m, "tidemark_tier_chunks_tagged_total", "offsite") == 1);
                    assertThat(sample(text, "tidemark_tier_sweep_ok", "offsite"))
                            .isEqualTo(1);
                    assertThat(sample(text, "tidemark_tier_sweep_last_success_timestamp_seconds", "offsite"))
                            .isGreaterThan(now.getEpochSecond() - 1);
                    // the target that does not answer: failing, counted, and it held nothing up
                    awaitMetrics(engine, m -> sample(m, "tidemark_tier_sweep_failures_total", "gone") >= 1);
                    assertThat(sample(text, "tidemark_tier_sweep_ok", "gone")).isIn(-1.0, 0.0);
                    // the status page shows the same, from memory: the offsite sweep ok, the gone one failing
                    JsonNode offsite = awaitTierRow(
                            engine, "offsite", r -> r.path("taggedTotal").asLong() == 1);
                    assertThat(offsite.path("state").asText()).isEqualTo("ok");
                    assertThat(offsite.path("taggedLast").asInt()).isEqualTo(1);
                    assertThat(offsite.path("rewarmPending").asInt()).isZero();
                    assertThat(offsite.has("lastSuccess")).isTrue();
                    JsonNode gone =
                            awaitTierRow(engine, "gone", r -> r.path("failures").asLong() >= 1);
                    assertThat(gone.path("state").asText()).isEqualTo("failing");
                    assertThat(gone.path("error").asText()).isNotBlank();

                    // a young point needs the tagged chunk: the next round untags it, reading that tag only
                    point(repo, Instant.now(), onlyOld);
                    await().atMost(DEADLINE)
                            .until(() -> store.tierTag(key(repo, onlyOld)).isEmpty());
                    TierSweeps.Status s = awaitStatus(
                            engine,
                            st -> st.untaggedTotal() == 1 && st.lastError().isEmpty());
                    assertThat(s.last().orElseThrow().untagged()).isEqualTo(1);
                    assertThat(s.last().orElseThrow().tagReads()).isEqualTo(1);
                    assertThat(s.last().orElseThrow().fullRead()).isEmpty();

                    // someone else (tidemark tier sweep) holds the target's lock: rounds fail until it is released
                    try (EpochLock held = EpochLock.acquire(
                            t,
                            "state/tier/lock/",
                            "tier sweep",
                            Clock.systemUTC(),
                            Duration.ofMinutes(10),
                            "cli sweep")) {
                        TierSweeps.Status busy =
                                awaitStatus(engine, st -> st.lastError().isPresent());
                        assertThat(busy.lastError().orElseThrow())
                                .contains("another tier sweep")
                                .contains("cli sweep");
                        awaitMetrics(engine, m -> sample(m, "tidemark_tier_sweep_ok", "offsite") == 0);
                        JsonNode row = awaitTierRow(
                                engine, "offsite", r -> r.path("state").asText().equals("held"));
                        assertThat(row.path("heldBy").asText()).contains("cli sweep");
                    }
                    awaitStatus(engine, st -> st.lastError().isEmpty());
                }

                // a restarted engine: its first round finds the ledger at the target and reads no tag
                try (Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC())) {
                    TierSweeps.Status s = awaitStatus(engine, st -> st.last().isPresent());
                    assertThat(s.last().orElseThrow().tagReads()).isZero();
                    assertThat(s.last().orElseThrow().chunks()).isEqualTo(3);
                }
            }
        }
    }

    private TierSweeps.Status awaitStatus(Engine engine, java.util.function.Predicate<TierSweeps.Status> done) {
        TierSweeps.Status[] seen = new TierSweeps.Status[1];
        await().atMost(DEADLINE).pollInterval(Duration.ofMillis(200)).until(() -> {
            Optional<TierSweeps.Status> s = engine.tierSweepStatuses().stream()
                    .filter(st -> st.target().equals("offsite"))
                    .findFirst();
            seen[0] = s.orElse(null);
            return s.isPresent() && done.test(s.get());
        });
        return seen[0];
    }

    /** The target's row of the status page's tier-sweep section ({@code /status.json}) once {@code done}. */
    private JsonNode awaitTierRow(Engine engine, String target, java.util.function.Predicate<JsonNode> done) {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest status = HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/status.json"))
                .header("Authorization", "Bearer " + TOKEN)
                .timeout(Duration.ofSeconds(5)) // the page answers from memory, whatever a target does
                .build();
        JsonNode[] row = {null};
        await().atMost(DEADLINE).pollInterval(Duration.ofMillis(500)).until(() -> {
            HttpResponse<String> r = http.send(status, HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).isEqualTo(200);
            for (JsonNode t : Json.mapper().readTree(r.body()).path("tierSweeps")) {
                if (t.path("target").asText().equals(target)) {
                    row[0] = t;
                    return done.test(t);
                }
            }
            return false;
        });
        return row[0];
    }

    private static String awaitMetrics(Engine engine, java.util.function.Predicate<String> done) {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest scrape = HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/metrics"))
                .timeout(Duration.ofSeconds(5)) // a scrape answers from memory, whatever a target does
                .build();
        String[] text = {""};
        await().atMost(DEADLINE).pollInterval(Duration.ofMillis(500)).until(() -> {
            text[0] = http.send(scrape, HttpResponse.BodyHandlers.ofString()).body();
            return done.test(text[0]);
        });
        return text[0];
    }

    private static double sample(String text, String family, String target) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(family + "{target=\"" + target + "\"}") + " (\\S+)$")
                .matcher(text);
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    private static int closedPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private Path config(CephCluster ceph, int deadPort) throws Exception {
        Path access = Files.writeString(dir.resolve("s3.access"), ceph.s3AccessKey());
        Path secret = Files.writeString(dir.resolve("s3.secret"), ceph.s3SecretKey());
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Path token = Files.writeString(dir.resolve("status.token"), TOKEN + "\n");
        Files.setPosixFilePermissions(token, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-1]}
                schedule:
                  interval: 1h
                rpo: 2h
                targets: [offsite, gone]
                tiers:
                  warm: {location: offsite, keep: 30d}
                  cold: {location: offsite, storage-class: GLACIER, keep: 1y}
                  gone-warm: {location: gone, keep: 30d}
                  gone-cold: {location: gone, storage-class: GLACIER, keep: 1y}
                """);
        String target =
                """
                  %s:
                    type: s3
                    endpoint: %s
                    region: %s
                    bucket: %s
                    prefix: engine/
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 0s
                """;
        return Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                host: hv-tier
                data: %s
                policies: %s
                roles: [replicator]
                metrics: 127.0.0.1:0
                tierSweep: {every: 10s, first: 0s}
                statusPage: {tokenFile: %s}
                targets:
                """
                                .formatted(dir.resolve("data"), policies, token)
                        + target.formatted("offsite", ceph.rgwEndpoint(), CephCluster.REGION, BUCKET, access, secret)
                        + target.formatted(
                                "gone",
                                URI.create("http://127.0.0.1:" + deadPort),
                                CephCluster.REGION,
                                BUCKET,
                                access,
                                secret));
    }

    private byte[] bytes() {
        byte[] b = new byte[4096];
        random.nextBytes(b);
        return b;
    }

    private static String key(Repository repo, byte[] data) {
        return ObjectKeys.chunk(repo.putChunk(data, data.length).digest());
    }

    private void point(Repository repo, Instant at, byte[]... chunks) {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex((long) chunks.length * chunk, Optional.empty());
        for (int i = 0; i < chunks.length; i++) {
            index.set(i, repo.putChunk(chunks[i], chunks[i].length).digest());
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
