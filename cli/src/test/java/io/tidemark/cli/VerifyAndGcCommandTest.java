package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The verify and gc commands on a local file repository: exit codes, text, JSON, errors. */
class VerifyAndGcCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path data;

    private Manifest point;
    private String chunk;

    private void repository() throws Exception {
        repository(3, Instant.parse("2026-11-24T00:00:00Z"));
    }

    /** One restore point of web-1 holding one chunk of seeded random data; sets {@link #point} and {@link #chunk}. */
    private void repository(long seed, Instant at) throws Exception {
        try (FileObjectTarget t = new FileObjectTarget(Files.createDirectories(data.resolve("repo")))) {
            Repository repo = Repository.openOrInit(t, RepositoryConfig.defaults());
            int chunkSize = repo.config().chunkSize();
            DiskIndexBuilder index = repo.newIndex(2L * chunkSize, Optional.empty());
            byte[] bytes = new byte[chunkSize];
            new Random(seed).nextBytes(bytes);
            var stored = repo.putChunk(bytes, chunkSize);
            index.set(1, stored.digest());
            chunk = ObjectKeys.chunk(stored.digest());
            point = new Manifest(
                    1,
                    RestorePointIds.next(at, new Random(1)),
                    "web-1",
                    "hv1",
                    "j" + seed,
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    Trigger.manual(),
                    "web",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda",
                            2L * chunkSize,
                            chunkSize,
                            index.finish().hex(),
                            "tm",
                            Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                            0,
                            0)));
            repo.commit(point);
        }
    }

    @Test
    void aCleanRepositoryVerifiesWithExitZero() throws Exception {
        repository();
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "local", "--deep"))
                .isZero();
        assertThat(std.out()).contains("1 restore points").contains("1 chunks").contains("no problems found");
    }

    @Test
    void aMissingChunkIsNamedWithTheRestorePointItBreaksAndExitsTwo() throws Exception {
        repository();
        Files.delete(data.resolve("repo").resolve(chunk));
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "local", "--json"))
                .isEqualTo(2);
        JsonNode report = Json.mapper().readTree(std.out());
        JsonNode problem = report.path("problems").get(0);
        assertThat(problem.path("key").asText()).isEqualTo(chunk);
        assertThat(problem.path("kind").asText()).isEqualTo("MISSING");
        assertThat(problem.path("affected").get(0).path("restorePoint").asText())
                .isEqualTo(point.id());
        // --from names the repository as list and restore do; --target stays as its old spelling
        std.reset();
        assertThat(Main.execute("verify", "--data", data.toString(), "--from", "local", "--json"))
                .isEqualTo(2);
        assertThat(Json.mapper()
                        .readTree(std.out())
                        .path("problems")
                        .get(0)
                        .path("key")
                        .asText())
                .isEqualTo(chunk);
        assertThat(report.path("problemsRemaining").asInt()).isEqualTo(1);

        std.reset();
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "local"))
                .isEqualTo(2);
        assertThat(std.out())
                .contains("MISSING      " + chunk)
                .contains("breaks: [web-1/" + point.id() + "]")
                .contains("--repair-from OTHER");
    }

    @Test
    void aRepairedPageIsCheckedAgainSoTheChunkItNamesIsRepairedToo(@TempDir Path copy) throws Exception {
        repository();
        Path repo = data.resolve("repo");
        try (var files = Files.walk(repo)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Path to = copy.resolve(repo.relativize(f));
                Files.createDirectories(to.getParent());
                Files.copy(f, to);
            }
        }
        String page;
        try (var files = Files.list(repo.resolve("pages"))) {
            Path dir = files.findFirst().orElseThrow();
            try (var pages = Files.list(dir)) {
                page = repo.relativize(pages.findFirst().orElseThrow()).toString();
            }
        }
        Files.delete(repo.resolve(page));
        Files.delete(repo.resolve(chunk)); // unseen until the page is back
        assertThat(Main.execute(
                        "verify",
                        "--data",
                        data.toString(),
                        "--target",
                        "local",
                        "--deep",
                        "--repair-from",
                        copy.toString()))
                .isZero();
        assertThat(std.out())
                .contains("MISSING      " + page)
                .contains("MISSING      " + chunk)
                .contains("2 problems, 2 repaired, 0 remain");
        std.reset();
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "local", "--deep"))
                .isZero();
    }

    @Test
    void anUnknownTargetNameSaysWhichExist() {
        assertThat(Main.execute("verify", "--data", data.toString(), "--target", "offsite"))
                .isEqualTo(2);
        assertThat(std.err()).contains("no target named 'offsite'").contains("'local'");
    }

    @Test
    void gcRecordsWhatIsUnreferencedAndDeletesNothingOnItsFirstRun() throws Exception {
        repository();
        Files.delete(data.resolve("repo").resolve(ObjectKeys.manifest("web-1", point.id())));
        assertThat(Main.execute("gc", "--data", data.toString(), "--json")).isZero();
        JsonNode r = Json.mapper().readTree(std.out());
        assertThat(r.path("candidates").asLong()).isEqualTo(3); // the chunk, the page, the root
        assertThat(r.path("sweptChunks").asLong()).isZero();
        assertThat(Files.exists(data.resolve("repo").resolve(chunk))).isTrue();

        std.reset();
        assertThat(Main.execute("gc", "--data", data.toString(), "--grace", "0s", "--dry-run"))
                .isZero();
        assertThat(std.out())
                .contains("would delete now: 1 chunks, 1 index pages, 1 roots")
                .contains("dry run");
        assertThat(Files.exists(data.resolve("repo").resolve(chunk))).isTrue();

        std.reset();
        assertThat(Main.execute("gc", "--data", data.toString(), "--grace", "0s"))
                .isZero();
        assertThat(std.out()).contains("deleted: 1 chunks, 1 index pages, 1 roots");
        assertThat(Files.exists(data.resolve("repo").resolve(chunk))).isFalse();
    }

    @Test
    void pruneWithGcCollectsWhatThePrunedPointAloneUsed(@TempDir Path policies) throws Exception {
        Files.writeString(
                policies.resolve("web.yaml"),
                "name: web\nvms: {names: [web-1]}\nschedule: {interval: 10m}\nrpo: 1h\n"
                        + "retention:\n  local: {last: 1}\n");
        repository(3, Instant.parse("2026-11-24T00:00:00Z"));
        String oldChunk = chunk;
        repository(4, Instant.parse("2026-11-24T01:00:00Z"));
        String[] prune = {"prune", "--data", data.toString(), "--policies", policies.toString(), "--gc", "--grace", "0s"
        };
        assertThat(Main.execute(prune)).isZero();
        assertThat(std.out())
                .contains("1 restore points removed")
                .contains("gc of local")
                .contains("3 unreferenced objects recorded");
        assertThat(Files.exists(data.resolve("repo").resolve(oldChunk))).isTrue();
        std.reset();
        assertThat(Main.execute(prune)).isZero(); // the next day's run
        assertThat(std.out())
                .contains("0 restore points removed")
                .contains("deleted: 1 chunks, 1 index pages, 1 roots");
        assertThat(Files.exists(data.resolve("repo").resolve(oldChunk))).isFalse();
        assertThat(Files.exists(data.resolve("repo").resolve(chunk))).isTrue();
    }

    @Test
    void aBadGraceIsRejected() {
        assertThat(Main.execute("gc", "--data", data.toString(), "--grace", "a day"))
                .as(std.err())
                .isEqualTo(1); // a bad flag is invalid input (Main's exit codes); it was 2
        assertThat(std.err()).contains("--grace 'a day' is not a duration");
    }

    @Test
    void helpTeachesWithAnExample() {
        assertThat(Main.execute("verify", "--help")).isZero();
        assertThat(std.out()).contains("Example:").contains("--repair-from");
        std.reset();
        assertThat(Main.execute("gc", "--help")).isZero();
        assertThat(std.out()).contains("Example:").contains("--grace");
    }
}
