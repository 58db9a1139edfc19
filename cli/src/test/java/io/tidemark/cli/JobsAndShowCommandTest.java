package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.engine.JobHistory;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.replicator.Replicator;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark jobs} on a history the engine wrote, and {@code tidemark show} on real repositories. */
class JobsAndShowCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final Random random = new Random(5);

    private void history() {
        Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
        Instant old = now.minus(5, ChronoUnit.HOURS);
        try (JobHistory h = JobHistory.open(JobHistory.directory(dir.resolve("data")), JobHistory.Limits.defaults())) {
            h.handle(Topics.jobs("hv1"), job("j-old", "web-1", old, Trigger.schedule("web")));
            h.handle(
                    Topics.RESTORE_POINTS,
                    new Event(
                            "e1",
                            "j-old",
                            old.plusSeconds(12),
                            new RestorePointCreated("web-1", "rp-old", "web", List.of(), old, 3 << 20, 1 << 20)));
            h.handle(
                    Topics.jobs("hv1"),
                    job("manual/r-9/db-1", "db-1", now, new Trigger(TriggerKind.MANUAL, Map.of("requestId", "r-9"))));
            h.handle(
                    Topics.JOB_STATUS,
                    new Event(
                            "e2",
                            "manual/r-9/db-1",
                            now.plusSeconds(4),
                            JobFailed.of(
                                    "db-1",
                                    "capture",
                                    FailureReason.CAPTURE_FAILED,
                                    "QMP socket of VM 'db-1' refused the connection",
                                    true)));
        }
    }

    private static Event job(String id, String vm, Instant at, Trigger trigger) {
        return new Event(
                "job-" + id,
                id,
                at,
                new SnapshotJob(vm, "hv1", trigger.is(TriggerKind.MANUAL) ? "db" : "web", trigger, List.of(), at));
    }

    @Test
    void jobsListsEachJobWithItsPointOrFailureReasonDurationAndBytes() {
        history();

        int exit = Main.execute("jobs", "--data", dir.resolve("data").toString());

        assertThat(exit).as(std.err()).isZero();
        String out = std.out();
        assertThat(out)
                .contains("web-1")
                .contains("schedule")
                .contains("committed")
                .contains("12.0 s");
        assertThat(out).contains("rp-old").contains("3.0 MiB").contains("1.0 MiB");
        assertThat(out)
                .contains("manual r-9")
                .contains("failed")
                .contains("CAPTURE_FAILED at capture: QMP socket of VM 'db-1' refused the connection")
                .contains("4.0 s");
    }

    @Test
    void jobsFiltersByVmFailureAndAge() throws Exception {
        history();
        String data = dir.resolve("data").toString();

        Main.execute("jobs", "--data", data, "--failed");
        String failed = std.out();
        std.reset();
        Main.execute("jobs", "--data", data, "--since", "2h");
        String recent = std.out();
        std.reset();
        Main.execute("jobs", "--data", data, "--vm", "web-1", "--json");
        JsonNode web = Json.mapper().readTree(std.out());

        assertThat(failed).contains("db-1").doesNotContain("web-1");
        assertThat(recent).contains("db-1").doesNotContain("web-1");
        assertThat(web).hasSize(1);
        assertThat(web.get(0).path("restorePointId").asText()).isEqualTo("rp-old");
        assertThat(web.get(0).path("durationMs").asLong()).isEqualTo(12_000);
        assertThat(web.get(0).path("trigger").path("kind").asText()).isEqualTo("schedule");
        assertThat(web.get(0).path("bytesNew").asLong()).isEqualTo(1 << 20);
    }

    @Test
    void jobsWithoutAHistorySaysSoAndABadSinceIsInvalidInput() {
        assertThat(Main.execute("jobs", "--data", dir.toString())).isZero();
        assertThat(std.out()).contains("no jobs recorded in");
        assertThat(Main.execute("jobs", "--data", dir.toString(), "--since", "yesterday"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--since 'yesterday' is not a duration");
    }

    @Test
    void showTellsDisksSizesParentReasonConsistencyTriggerMarksAndWhichLocationsHoldIt() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("data/repo"));
        Repository primary = Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        Manifest first = point(primary, Optional.empty(), Optional.of("no earlier restore point"));
        Manifest second = point(primary, Optional.of(first.id()), Optional.empty());
        primary.mark(
                "web-1",
                second.id(),
                new PointMark(
                        PointMark.Kind.PINNED,
                        "deploy of shop 4f2a failed",
                        Instant.parse("2026-12-07T01:00:00Z"),
                        Map.of()));
        Path vault = Files.createDirectories(dir.resolve("vault"));
        Path other = Files.createDirectories(dir.resolve("other"));
        try (FileObjectTarget v = new FileObjectTarget(vault);
                FileObjectTarget o = new FileObjectTarget(other);
                Replicator r = new Replicator(primary, Map.of("vault", v, "other", o), 1)) {
            r.replicate("web-1", second.id(), "vault");
            r.replicate("web-1", first.id(), "other");
        }
        Path config = dir.resolve("tidemark.yaml");
        Files.writeString(
                config,
                """
                data: %s
                targets:
                  vault: {type: file, path: %s}
                  other: {type: file, path: %s}
                """
                        .formatted(dir.resolve("data"), vault, other));

        int exit = Main.execute("show", second.id(), "--config", config.toString());

        assertThat(exit).as(std.err()).isZero();
        String out = std.out();
        assertThat(out).contains("restore point  " + second.id());
        assertThat(out).contains("vm             web-1 (host hv1)");
        assertThat(out).contains("consistency    crash — no guest agent answered");
        assertThat(out).contains("trigger        manual requestId=r-1");
        assertThat(out).contains("incremental of " + first.id());
        assertThat(out).contains("sda").contains("no (changed extents only)");
        assertThat(out).containsPattern("local +holds it; pinned at 2026-12-07T01:00:00Z: deploy of shop 4f2a failed");
        assertThat(out).containsPattern("vault +holds it");
        assertThat(out).containsPattern("other +does not hold it");

        std.reset();
        assertThat(Main.execute("show", first.id(), "--config", config.toString(), "--from", "other", "--json"))
                .isZero();
        JsonNode json = Json.mapper().readTree(std.out());
        assertThat(json.path("id").asText()).isEqualTo(first.id());
        assertThat(json.path("disks").get(0).path("fullReason").asText()).isEqualTo("no earlier restore point");
        Map<String, Boolean> holds = new java.util.TreeMap<>();
        json.path("locations")
                .forEach(l ->
                        holds.put(l.path("location").asText(), l.path("holds").asBoolean()));
        assertThat(holds).isEqualTo(Map.of("local", true, "vault", false, "other", true));

        std.reset();
        assertThat(Main.execute("show", second.id(), "--config", config.toString(), "--stored", "--json"))
                .isZero();
        JsonNode footprint = Json.mapper().readTree(std.out()).path("footprint");
        assertThat(footprint.path("chunks").asLong()).isEqualTo(1);
        assertThat(footprint.path("logicalBytes").asLong())
                .isEqualTo(primary.config().chunkSize());
        // the one chunk the point's data went into: a stored object, smaller than the random 64 KiB it holds
        // only by the framing (random data does not compress)
        var root = primary.root(
                io.tidemark.format.Digest.fromHex(second.disks().get(0).index()));
        var chunk = primary.page(root.pages().get(0)).get(0);
        long storedObject = Files.size(repo.resolve(io.tidemark.format.ObjectKeys.chunk(chunk)));
        assertThat(footprint.path("storedBytes").asLong()).isEqualTo(storedObject);
        assertThat(footprint.path("missing").asLong()).isZero();

        std.reset();
        assertThat(Main.execute("show", "20990101T000000.000Z-0000", "--config", config.toString()))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("no restore point '20990101T000000.000Z-0000' at local");
    }

    private Manifest point(Repository repo, Optional<String> parent, Optional<String> fullReason) {
        int chunk = repo.config().chunkSize();
        var index = repo.newIndex(4L * chunk, Optional.empty());
        byte[] data = new byte[chunk];
        random.nextBytes(data);
        index.set(0, repo.putChunk(data, chunk).digest());
        Instant captured = Instant.now().minusSeconds(parent.isPresent() ? 60 : 120);
        String id = RestorePointIds.next(captured, random);
        Manifest m = new Manifest(
                1,
                id,
                "web-1",
                "hv1",
                "job-" + id,
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                new Trigger(TriggerKind.MANUAL, Map.of("requestId", "r-1")),
                "web",
                parent,
                List.of(new DiskEntry(
                        "sda",
                        4L * chunk,
                        chunk,
                        index.finish().hex(),
                        "tm-" + id,
                        fullReason.map(r -> io.tidemark.core.event.FullReason.of(
                                io.tidemark.core.event.FullReason.Kind.FIRST_BACKUP, r)),
                        chunk,
                        chunk)),
                Optional.of("no guest agent answered"));
        repo.commit(m);
        return m;
    }
}
