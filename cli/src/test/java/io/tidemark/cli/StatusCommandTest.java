package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.replicator.Replicator;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class StatusCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void aTargetThatCannotBeReadIsMarkedWhileTheOthersAreShownAndCounted() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("data/repo"));
        Repository primary = Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        Instant now = Instant.now(); // one base: writing the first point may take a second on a loaded host
        Manifest first = point(primary, now.minusSeconds(120));
        Manifest second = point(primary, now.minusSeconds(60));
        Path vault = Files.createDirectories(dir.resolve("vault"));
        try (FileObjectTarget v = new FileObjectTarget(vault);
                Replicator r = new Replicator(primary, Map.of("vault", v), 1)) {
            r.replicate("web-1", first.id(), "vault"); // the vault lacks the second point
        }
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"),
                """
                name: web
                vms: {names: [web-1]}
                schedule: {interval: 1h}
                rpo: 1h
                targets: [vault, gone]
                """);
        Path config = dir.resolve("tidemark.yaml");
        Files.writeString(
                config,
                """
                data: %s
                policies: %s
                targets:
                  vault: {type: file, path: %s}
                  gone: {type: file, path: %s}
                """
                        .formatted(dir.resolve("data"), policies, vault, dir.resolve("unmounted")));

        int exit = Main.execute("status", "--config", config.toString());

        assertThat(exit).as(std.err()).isEqualTo(StatusCommand.EXIT_PARTIAL);
        assertThat(std.out())
                .containsPattern("web-1 +local +web +\\d{4}-")
                .containsPattern("web-1 +vault +web +\\d{4}-")
                .containsPattern("web-1 +gone +web +UNREACHABLE")
                .containsPattern("vault +ok +1 +1m ago +by VM \\[web-1=1\\]")
                .containsPattern("gone +UNREACHABLE .*unmounted");
        assertThat(second.id()).isNotEqualTo(first.id());
    }

    private final Random random = new Random(3);

    private Manifest point(Repository repo, Instant captured) {
        int chunk = repo.config().chunkSize();
        var index = repo.newIndex(4L * chunk, Optional.empty());
        byte[] data = new byte[chunk];
        random.nextBytes(data);
        index.set(0, repo.putChunk(data, chunk).digest());
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
                Trigger.manual(),
                "web",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sda",
                        4L * chunk,
                        chunk,
                        index.finish().hex(),
                        "tm-" + id,
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }

    @Test
    void theHelpPointsToTheEnginesStatusPage() {
        assertThat(Main.execute("status", "--help")).isZero();

        assertThat(std.out()).contains("statusPage:").contains("http://127.0.0.1:9464/status");
    }
}
