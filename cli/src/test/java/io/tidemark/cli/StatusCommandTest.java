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
                .containsPattern("vault +ok +1 +1m(\\d+s)? ago +by VM \\[web-1=1\\]")
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

    /**
     * A continuous VM's mirror lag (phase + lag) and DR points' age come from the engine's status page
     * (served here by a stand-in HTTP server with the page's JSON shape); the engine down is ENGINE DOWN
     * and exit 5.
     */
    @Test
    void continuousVmsShowTheMirrorPhaseLagAndDrPointsAgeFromTheEnginesStatusPage() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("data/repo"));
        Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 30s}
                rpo: 2s
                mode: continuous
                dr: {nbd: "nbd://dr:10809/{vm}-{disk}"}
                """);
        Path token = dir.resolve("status.token");
        Files.writeString(token, "cli-status-test-token-0123456789\n");
        Files.setPosixFilePermissions(token, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        String page =
                """
                {"host": "hv1", "at": "2026-01-01T00:00:00Z", "historyLoaded": true, "vms": [{"name": "db-1",
                 "policy": "db", "rpoViolated": true, "failing": false, "locations": [
                  {"location": "dr-mirror", "reachable": true, "ageSeconds": 7, "rpoSeconds": 2, "violated": true,
                   "state": "outage lag 7s"},
                  {"location": "dr-points", "reachable": true, "newestCapturedAt": "2026-01-01T00:00:00Z",
                   "ageSeconds": 12, "rpoSeconds": 60, "violated": false, "state": "3 points"}]}]}
                """;
        com.sun.net.httpserver.HttpServer server =
                com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/status.json", x -> {
            boolean ok = "Bearer cli-status-test-token-0123456789"
                    .equals(x.getRequestHeaders().getFirst("Authorization"));
            byte[] body = (ok ? page : "{}").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            x.sendResponseHeaders(ok ? 200 : 401, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        server.start();
        Path config = dir.resolve("tidemark.yaml");
        String yaml =
                """
                data: %s
                policies: %s
                metrics: 127.0.0.1:%d
                statusPage: {tokenFile: %s}
                """;
        try {
            Files.writeString(
                    config,
                    yaml.formatted(
                            dir.resolve("data"), policies, server.getAddress().getPort(), token));
            int exit = Main.execute("status", "--config", config.toString());
            assertThat(exit).as(std.err()).isEqualTo(StatusCommand.EXIT_RPO_VIOLATED);
            assertThat(std.out())
                    .containsPattern("db-1 +dr-mirror +db +outage lag 7s +7s +2s +VIOLATED")
                    .containsPattern("db-1 +dr-points +db +3 points +12s +1m");

            exit = Main.execute("status", "--config", config.toString(), "--json");
            assertThat(exit).isEqualTo(StatusCommand.EXIT_RPO_VIOLATED);
            assertThat(std.out())
                    .contains("\"location\" : \"dr-mirror\"")
                    .contains("\"state\" : \"outage lag 7s\"")
                    .contains("\"ageSeconds\" : 12");
        } finally {
            server.stop(0);
        }

        // the engine down: the continuous rows are unknown, said so, exit 5 (partial)
        int exit = Main.execute("status", "--config", config.toString());
        assertThat(exit).isEqualTo(StatusCommand.EXIT_PARTIAL);
        assertThat(std.out()).contains("ENGINE DOWN").contains("is the engine running?");
    }

    @Test
    void eachTargetsTierSweepIsShownFromTheEnginesStatusPageWithItsResult() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("data/repo"));
        Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        Path vault = Files.createDirectories(dir.resolve("vault"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-1]}
                schedule: {interval: 1h}
                rpo: 2h
                targets: [vault]
                tiers:
                  warm: {location: vault, keep: 30d}
                  cold: {location: vault, storage-class: GLACIER, keep: 1y}
                """);
        Path token = dir.resolve("status.token");
        Files.writeString(token, "cli-status-test-token-0123456789\n");
        Files.setPosixFilePermissions(token, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        String at = Instant.now().minusSeconds(120).toString();
        String page =
                """
                {"host": "hv1", "at": "%s", "historyLoaded": true, "vms": [], "tierSweeps": [
                  {"target": "vault", "state": "held", "lastAttempt": "%s", "error": "another tier sweep holds it",
                   "heldBy": "cli on hv2 until 2026-01-01T00:10:00Z", "rewarmPending": 0, "taggedTotal": 0,
                   "untaggedTotal": 0, "rewarmedTotal": 0, "failures": 1},
                  {"target": "offsite", "state": "ok", "lastAttempt": "%s", "lastSuccess": "%s", "chunks": 40,
                   "taggedLast": 3, "untaggedLast": 0, "tagReads": 4, "restoresRequested": 2, "rewarmPending": 2,
                   "taggedTotal": 7, "untaggedTotal": 0, "rewarmedTotal": 0, "failures": 0}]}
                """
                        .formatted(at, at, at, at);
        com.sun.net.httpserver.HttpServer server =
                com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/status.json", x -> {
            boolean ok = "Bearer cli-status-test-token-0123456789"
                    .equals(x.getRequestHeaders().getFirst("Authorization"));
            byte[] body = (ok ? page : "{}").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            x.sendResponseHeaders(ok ? 200 : 401, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        server.start();
        Path config = dir.resolve("tidemark.yaml");
        try {
            Files.writeString(
                    config,
                    """
                    data: %s
                    policies: %s
                    metrics: 127.0.0.1:%d
                    statusPage: {tokenFile: %s}
                    targets:
                      vault: {type: file, path: %s}
                    """
                            .formatted(
                                    dir.resolve("data"),
                                    policies,
                                    server.getAddress().getPort(),
                                    token,
                                    vault));
            int exit = Main.execute("status", "--config", config.toString());
            assertThat(exit).as(std.err()).isZero();
            assertThat(std.out())
                    .containsPattern("TIER SWEEP TARGET +STATE")
                    .containsPattern("vault +held +2m ago +- +0  held by another tier sweep: cli on hv2")
                    .containsPattern("offsite +ok +2m ago +3 +2");

            exit = Main.execute("status", "--config", config.toString(), "--json");
            assertThat(exit).isZero();
            assertThat(std.out())
                    .contains("\"tierSweep\" : \"offsite\"")
                    .contains("\"state\" : \"held\"")
                    .contains("\"heldBy\" : \"cli on hv2 until 2026-01-01T00:10:00Z\"")
                    .contains("\"rewarmPending\" : 2");
        } finally {
            server.stop(0);
        }

        // the engine down: the tier sweeps are unknown, said so, exit 5 (partial)
        int exit = Main.execute("status", "--config", config.toString());
        assertThat(exit).isEqualTo(StatusCommand.EXIT_PARTIAL);
        assertThat(std.out()).contains("ENGINE DOWN").contains("TIER SWEEPS  unknown (engine down)");
    }
}
