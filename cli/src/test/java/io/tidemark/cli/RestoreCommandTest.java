package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark restore}'s selection, output naming and exit codes on a small file repository. */
class RestoreCommandTest {

    private static final int CHUNK = 64 * 1024;

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private Path repo;
    private final String[] sha = new String[3];

    /** Three one-disk points an hour apart; the second taken by a pre-deploy hook. */
    @BeforeEach
    void points() throws Exception {
        repo = Files.createDirectories(dir.resolve("repo"));
        Repository r = Repository.openOrInit(new FileObjectTarget(repo), new RepositoryConfig(1, CHUNK, 16));
        for (int n = 0; n < 3; n++) {
            byte[] disk = new byte[8 * CHUNK];
            var index = r.newIndex(disk.length, Optional.empty());
            byte[] data = new byte[CHUNK];
            java.util.Arrays.fill(data, (byte) (n + 1));
            System.arraycopy(data, 0, disk, 2 * CHUNK, CHUNK);
            index.set(2, r.putChunk(data, CHUNK).digest());
            sha[n] = Digest.sha256(disk).hex();
            Instant at = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(3600L * n);
            Trigger t = n == 1
                    ? new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", "cafe1234", "pipeline", "p"))
                    : Trigger.schedule("pol");
            r.commit(new Manifest(
                    1,
                    "p" + n,
                    "web-1",
                    "hv1",
                    "j" + n,
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    t,
                    "pol",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda",
                            disk.length,
                            CHUNK,
                            index.finish().hex(),
                            "c",
                            Optional.of(FullReason.of(FullReason.Kind.UNRECORDED, "full")),
                            0,
                            0))));
        }
    }

    private int run(String... args) {
        std.reset();
        return Main.execute(args);
    }

    @Test
    void listShowsThePreDeployTagsThatRestoreSelects() {
        assertThat(run("list", "--from", repo.toString(), "--vm", "web-1")).isZero();
        assertThat(std.out().lines().filter(l -> l.contains("pre-deploy:")).toList())
                .singleElement()
                .satisfies(l -> assertThat(l).startsWith("p1 ").endsWith("pre-deploy:shop@cafe1234"));
    }

    @Test
    void listFromLocalWithAConfigReadsThePrimaryItsRepositoryNames() throws Exception {
        Path config = java.nio.file.Files.writeString(
                dir.resolve("shared-primary.yaml"),
                "data: " + dir.resolve("elsewhere") + "\nrepository: " + repo + "\n");
        assertThat(run("list", "--config", config.toString(), "--from", "local", "--vm", "web-1"))
                .as(std.err())
                .isZero();
        assertThat(std.out()).contains("pre-deploy:shop@cafe1234");
    }

    @Test
    void selectsByTagAndTimeAndPrintsJson() throws Exception {
        Path out = dir.resolve("out");
        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--tag",
                        "pre-deploy:cafe12",
                        "--out",
                        out.toString(),
                        "--json"))
                .as(std.err())
                .isZero();
        JsonNode j = Json.mapper().readTree(std.out());
        assertThat(j.path("restorePoint").asText()).isEqualTo("p1");
        assertThat(j.path("tag").asText()).isEqualTo("pre-deploy:shop@cafe1234");
        JsonNode d = j.path("disks").get(0);
        assertThat(d.path("image").asText()).isEqualTo(out.resolve("sda.raw").toString());
        assertThat(d.path("sha256").asText()).isEqualTo(sha[1]).isEqualTo(Restorer.sha256(out.resolve("sda.raw")));
        assertThat(d.path("bytesFetched").asLong()).isEqualTo(CHUNK);
        assertThat(d.path("chunksFetched").asLong()).isEqualTo(1);

        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--at",
                        "2026-11-24T01:59:59Z",
                        "--disk",
                        "sda",
                        "--out",
                        dir.resolve("one.raw").toString()))
                .isZero();
        assertThat(std.out()).contains("restoring p1 of web-1").contains("sha256 " + sha[1]);
        assertThat(Restorer.sha256(dir.resolve("one.raw"))).isEqualTo(sha[1]);

        // without the image digest: the same image, no sha256 in the summary
        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--point",
                        "p2",
                        "--disk",
                        "sda",
                        "--out",
                        dir.resolve("two.raw").toString(),
                        "--no-image-sha256",
                        "--json"))
                .isZero();
        assertThat(Json.mapper().readTree(std.out()).path("disks").get(0).has("sha256"))
                .isFalse();
        assertThat(Restorer.sha256(dir.resolve("two.raw"))).isEqualTo(sha[2]);
    }

    @Test
    void badInputExitsOneAndNothingMatchingExitsTwoWithCandidates() {
        assertThat(run("restore", "--from", repo.toString(), "--vm", "web-1", "--at", "soon", "--out", "x"))
                .isEqualTo(1);
        assertThat(std.err()).contains("'soon' is not a time");
        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--point",
                        "p1",
                        "--tag",
                        "pre-deploy:cafe",
                        "--out",
                        "x"))
                .isEqualTo(1);
        assertThat(std.err()).contains("only one of --point, --at and --tag");
        assertThat(run("restore", "--from", repo.toString(), "--vm", "web-1", "--format", "vmdk", "--out", "x"))
                .isEqualTo(1);
        assertThat(std.err()).contains("--format must be raw or qcow2");

        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--tag",
                        "pre-deploy:beef",
                        "--out",
                        dir.resolve("n").toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("the newest pre-deploy points: p1 (captured 2026-11-24T01:00:00Z,");
        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "db-1",
                        "--out",
                        dir.resolve("n").toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("VM 'db-1' has no restore points").contains("[web-1]");
        assertThat(dir.resolve("n")).doesNotExist();
    }

    @Test
    void aCorruptChunkExitsTwoNamingTheObjectAndLeavesNoImage() throws Exception {
        // every chunk object flipped in its last byte: whichever the point uses is corrupt
        List<Path> chunks;
        try (var files = Files.walk(repo.resolve("chunks"))) {
            chunks = files.filter(Files::isRegularFile).toList();
        }
        assertThat(chunks).hasSize(3);
        for (Path chunk : chunks) {
            byte[] bad = Files.readAllBytes(chunk);
            bad[bad.length - 1] ^= 1;
            chunk.toFile().setWritable(true);
            Files.write(chunk, bad);
        }
        Path out = dir.resolve("corrupt");
        assertThat(run("restore", "--from", repo.toString(), "--vm", "web-1", "--point", "p0", "--out", out.toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("corrupt").contains("chunks/");
        try (var left = Files.list(out)) {
            assertThat(left.toList()).isEmpty();
        }
    }

    @Test
    void aTruncatedOldManifestIsNamedAndHidesNoHealthyPoint() throws Exception {
        String key = io.tidemark.format.ObjectKeys.manifest("web-1", "p0");
        Path manifest = repo.resolve(key);
        byte[] whole = Files.readAllBytes(manifest);
        manifest.toFile().setWritable(true);
        Files.write(manifest, java.util.Arrays.copyOf(whole, whole.length / 2)); // a torn copy

        assertThat(run("list", "--from", repo.toString())).as(std.err()).isZero();
        assertThat(std.out().lines().map(l -> l.split(" ")[0]).toList()).containsExactly("p1", "p2");
        assertThat(std.err())
                .contains("warning: restore point p0 of VM web-1 cannot be read")
                .contains(key);

        Path out = dir.resolve("latest");
        assertThat(run(
                        "restore",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--point",
                        "latest",
                        "--out",
                        out.toString()))
                .as(std.err())
                .isZero();
        assertThat(Restorer.sha256(out.resolve("sda.raw"))).isEqualTo(sha[2]);
        assertThat(std.err()).contains(key);

        assertThat(run("restore", "--from", repo.toString(), "--vm", "web-1", "--point", "p0", "--out", out.toString()))
                .isEqualTo(2);
        assertThat(std.err())
                .contains("restore point 'p0' of VM 'web-1'")
                .contains("cannot be read")
                .contains(key);

        // status seeds the RPO from the newest readable point instead of dying on the damaged one
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("pol.yaml"), "name: pol\nvms: {names: [web-1]}\nschedule: {interval: 1h}\nrpo: 1h\n");
        assertThat(run("status", "--data", dir.toString(), "--policies", policies.toString(), "--json"))
                .as(std.err())
                .isEqualTo(StatusCommand.EXIT_RPO_VIOLATED); // the points are from 2026-11-24
        String json = std.out().substring(std.out().indexOf("\n[") + 1); // after the test logger's WARN line
        assertThat(Json.mapper().readTree(json).get(0).path("newestCapturedAt").asText())
                .isEqualTo("2026-11-24T02:00:00Z");

        assertThat(run("verify", "--target", repo.toString(), "--json")).isEqualTo(2);
        JsonNode problem = Json.mapper().readTree(std.out()).path("problems").get(0);
        assertThat(problem.path("key").asText()).isEqualTo(key);
        assertThat(problem.path("kind").asText()).isEqualTo("BAD_MANIFEST");
        assertThat(problem.path("affected").get(0).path("restorePoint").asText())
                .isEqualTo("p0");
    }

    @Test
    void helpTeachesSelectionAndFormats() {
        assertThat(run("restore", "--help")).isZero();
        assertThat(std.out())
                .contains("--at")
                .contains("2h ago")
                .contains("pre-deploy:APP@SHA")
                .contains("rbd:POOL/IMAGE")
                .contains("Examples:");
    }

    @Test
    void rbdImagesPerDiskKeepTheOptions() {
        assertThat(RestoreCommand.rbdPerDisk("rbd:vms/web-1:conf=/etc/ceph/ceph.conf:id=admin", "sda"))
                .isEqualTo("rbd:vms/web-1-sda:conf=/etc/ceph/ceph.conf:id=admin");
        assertThat(RestoreCommand.rbdPerDisk("rbd:vms/web-1", "sdb")).isEqualTo("rbd:vms/web-1-sdb");
    }
}
