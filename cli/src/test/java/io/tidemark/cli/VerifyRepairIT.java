package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.replicator.Replicator;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tidemark verify} against a real S3 endpoint (S3Proxy): restore points are replicated
 * there from the local file repository by the real replicator; then one chunk on S3 gets a flipped
 * byte and another is deleted. The metadata check finds the deleted one, {@code --deep} both, each
 * named with the restore points it breaks; {@code --repair-from local} puts the good copies back,
 * and every point then restores from S3 bit-identically.
 */
class VerifyRepairIT {

    private static final RepositoryConfig CONFIG =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 8);
    private static final int CHUNKS = 32;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    private final Map<Manifest, String> expected = new LinkedHashMap<>();
    private final Random random = new Random(11);

    @Test
    void deepVerifyFindsACorruptAndAMissingChunkOnS3AndRepairFromTheLocalRepositoryFixesThem() throws Exception {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("tidemark-verify");
            Path config = engineConfig(s3);
            EngineConfig engine = EngineConfig.load(config);
            Repository local;
            try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(dir.resolve("data/repo")))) {
                local = Repository.openOrInit(primary, CONFIG);
                Manifest a1 = point(
                        local,
                        "app-1",
                        Optional.empty(),
                        IntStream.range(0, 12).boxed().toList());
                Manifest a2 = point(local, "app-1", Optional.of(a1), List.of(3, 20));
                Manifest b1 = point(
                        local,
                        "db-1",
                        Optional.empty(),
                        IntStream.range(0, 6).boxed().toList());
                Map<String, ObjectTarget> targets = TargetSpec.openAll(engine.targets());
                try (Replicator replicator = new Replicator(local, targets, 4)) {
                    for (Manifest m : List.of(a1, a2, b1)) {
                        replicator.replicate(m.vm(), m.id(), "offsite");
                    }
                }
                ObjectTarget offsite = targets.get("offsite");
                String shared = chunkKeys(local, a1).stream()
                        .filter(chunkKeys(local, a2)::contains)
                        .findFirst()
                        .orElseThrow();
                String dbOnly = chunkKeys(local, b1).get(2);
                byte[] bad = offsite.get(shared).orElseThrow();
                bad[bad.length / 2] ^= 0x01;
                offsite.delete(shared);
                offsite.putIfAbsent(shared, bad);
                offsite.delete(dbOnly);

                // metadata only: the deleted chunk, not the flipped byte
                JsonNode meta = verify(config, "--target", "offsite", "--json");
                assertThat(std.err()).isEmpty();
                assertThat(keys(meta)).containsExactly(dbOnly);
                assertThat(problem(meta, dbOnly).path("kind").asText()).isEqualTo("MISSING");
                assertThat(affected(problem(meta, dbOnly))).containsExactly("db-1/" + b1.id());

                JsonNode deep = verify(config, "--target", "offsite", "--deep", "--json");
                assertThat(keys(deep)).containsExactlyInAnyOrder(shared, dbOnly);
                JsonNode corrupt = problem(deep, shared);
                assertThat(corrupt.path("kind").asText()).isEqualTo("CORRUPT");
                assertThat(corrupt.path("detail").asText()).contains(shared).contains("hashes to");
                assertThat(affected(corrupt)).containsExactly("app-1/" + a1.id(), "app-1/" + a2.id());
                assertThat(deep.path("chunkBytesRead").asLong()).isPositive();

                std.reset();
                assertThat(Main.execute(
                                "verify",
                                "--config",
                                config.toString(),
                                "--target",
                                "offsite",
                                "--deep",
                                "--repair-from",
                                "local"))
                        .isZero();
                assertThat(std.out())
                        .contains("CORRUPT      " + shared)
                        .contains("MISSING      " + dbOnly)
                        .contains("REPAIRED: replaced with the good copy from file:")
                        .contains("2 problems, 2 repaired, 0 remain");

                std.reset();
                assertThat(Main.execute("verify", "--config", config.toString(), "--target", "offsite", "--deep"))
                        .isZero();
                assertThat(std.out()).contains("no problems found").contains("3 restore points");

                Repository there = Repository.open(offsite);
                for (Map.Entry<Manifest, String> e : expected.entrySet()) {
                    Path out = dir.resolve("restored-" + e.getKey().id() + ".raw");
                    Restorer.Result r =
                            new Restorer(there, 4).restoreDisk(e.getKey(), "sda", out, Restorer.Progress.NONE);
                    assertThat(r.sha256()).as("restore of %s", e.getKey().id()).isEqualTo(e.getValue());
                }

                // and the gc command on the same target: nothing unreferenced, nothing to delete
                std.reset();
                assertThat(Main.execute("gc", "--config", config.toString(), "--target", "offsite", "--json"))
                        .isZero();
                JsonNode gc = Json.mapper().readTree(std.out());
                assertThat(gc.path("restorePoints").asInt()).isEqualTo(3);
                assertThat(gc.path("candidates").asLong()).isZero();
                targets.values().forEach(ObjectTarget::close);
            }
        }
    }

    private JsonNode verify(Path config, String... args) throws Exception {
        std.reset();
        List<String> all = new ArrayList<>(List.of("verify", "--config", config.toString()));
        all.addAll(List.of(args));
        assertThat(Main.execute(all.toArray(String[]::new))).as("exit code").isEqualTo(2);
        return Json.mapper().readTree(std.out());
    }

    private static Set<String> keys(JsonNode report) {
        Set<String> out = new TreeSet<>();
        report.path("problems").forEach(p -> out.add(p.path("key").asText()));
        return out;
    }

    private static JsonNode problem(JsonNode report, String key) {
        for (JsonNode p : report.path("problems")) {
            if (p.path("key").asText().equals(key)) {
                return p;
            }
        }
        throw new AssertionError("no problem for " + key + " in " + report);
    }

    private static List<String> affected(JsonNode problem) {
        List<String> out = new ArrayList<>();
        problem.path("affected")
                .forEach(a -> out.add(
                        a.path("vm").asText() + "/" + a.path("restorePoint").asText()));
        return out;
    }

    private Path engineConfig(EmbeddedS3 s3) throws Exception {
        Path secrets = Files.createDirectories(dir.resolve("secrets"));
        Files.writeString(secrets.resolve("access"), s3.accessKey());
        Files.writeString(secrets.resolve("secret"), s3.secretKey());
        Path config = dir.resolve("tidemark.yaml");
        Files.writeString(
                config,
                """
                data: %s
                targets:
                  offsite:
                    type: s3
                    endpoint: %s
                    region: us-east-1
                    bucket: tidemark-verify
                    prefix: tm
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 5s
                """
                        .formatted(
                                dir.resolve("data"),
                                s3.endpoint(),
                                secrets.resolve("access"),
                                secrets.resolve("secret")));
        return config;
    }

    /** Commits a point of {@code vm} whose {@code rewrite} chunks get fresh random data on top of {@code parent}. */
    private Manifest point(Repository repo, String vm, Optional<Manifest> parent, List<Integer> rewrite) {
        int chunkSize = CONFIG.chunkSize();
        long size = (long) CHUNKS * chunkSize;
        byte[] image = parent.map(p -> imageOf(p).clone()).orElse(new byte[(int) size]);
        DiskIndexBuilder index = repo.newIndex(
                size, parent.map(p -> repo.root(Digest.fromHex(p.disks().get(0).index()))));
        byte[] data = new byte[chunkSize];
        for (int c : rewrite) {
            random.nextBytes(data);
            System.arraycopy(data, 0, image, c * chunkSize, chunkSize);
            index.set(c, repo.putChunk(data, chunkSize).digest());
        }
        Instant at = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(60L * expected.size());
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(at, random),
                vm,
                "hv1",
                "job-" + expected.size(),
                at,
                at,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(Manifest::id),
                List.of(new DiskEntry(
                        "sda",
                        size,
                        chunkSize,
                        index.finish().hex(),
                        "tm",
                        parent.isEmpty()
                                ? Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first"))
                                : Optional.empty(),
                        0,
                        0)));
        repo.commit(m);
        images.put(m.id(), image);
        expected.put(m, sha256(image));
        return m;
    }

    private final Map<String, byte[]> images = new LinkedHashMap<>();

    private byte[] imageOf(Manifest m) {
        return images.get(m.id());
    }

    private static List<String> chunkKeys(Repository r, Manifest m) {
        List<String> out = new ArrayList<>();
        for (Digest p : r.root(Digest.fromHex(m.disks().get(0).index())).pages()) {
            var page = r.page(p);
            for (int i = 0; i < page.size(); i++) {
                String key = ObjectKeys.chunk(page.get(i));
                if (!page.get(i).isZero() && !out.contains(key)) {
                    out.add(key);
                }
            }
        }
        return out;
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
