package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code --json} contract (docs/cli.md): one JSON document on stdout and nothing else there;
 * a failure is {@code {"error": ..., "exitCode": N}} with the exit code the process ends with.
 * And {@code list} reads the same sources as {@code restore}.
 */
class JsonContractTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private int run(String... args) {
        std.reset();
        return Main.execute(args);
    }

    /**
     * stdout as the one JSON document it must be (Jackson fails on anything after it). The tests'
     * log configuration writes log lines to stdout too (the CLI's own writes them to stderr): those
     * are left out.
     */
    private JsonNode document() throws Exception {
        String out = std.out()
                .lines()
                .filter(l -> !l.matches("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} .*"))
                .collect(java.util.stream.Collectors.joining("\n"));
        return Json.mapper()
                .readerFor(JsonNode.class)
                .with(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .readValue(out);
    }

    private static void commit(Path repo, String vm, String id) {
        try (FileObjectTarget t = new FileObjectTarget(createDirectories(repo))) {
            Instant at = Instant.parse("2026-11-24T00:00:00Z");
            Repository.openOrInit(t, RepositoryConfig.defaults())
                    .commit(new Manifest(
                            1,
                            id,
                            vm,
                            "hv1",
                            "job-" + id,
                            at,
                            at,
                            ConsistencyAchieved.CRASH,
                            Trigger.manual(),
                            "web",
                            Optional.empty(),
                            List.of()));
        }
    }

    private static Path createDirectories(Path p) {
        try {
            return Files.createDirectories(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void aFailureWithJsonIsOneErrorObjectOnStdoutAndTheMessageOnStderr() throws Exception {
        int exit = run(
                "restore",
                "--from",
                dir.toString(),
                "--vm",
                "web-1",
                "--out",
                dir.resolve("o").toString(),
                "--json");
        assertThat(exit).isEqualTo(Main.EXIT_PERMANENT);
        JsonNode error = document();
        assertThat(error.path("exitCode").asInt()).isEqualTo(Main.EXIT_PERMANENT);
        assertThat(error.path("error").asText())
                .contains("no Tidemark repository at")
                .contains(dir.toString());
        assertThat(std.err()).contains("tidemark: no Tidemark repository at");
    }

    @Test
    void aBadFlagWithJsonExitsOneWithTheErrorObject() throws Exception {
        assertThat(run("list", "--no-such-flag", "--json")).isEqualTo(Main.EXIT_INVALID);
        JsonNode error = document();
        assertThat(error.path("exitCode").asInt()).isEqualTo(Main.EXIT_INVALID);
        assertThat(error.path("error").asText()).contains("--no-such-flag");
        assertThat(std.err()).contains("Usage: tidemark list"); // a person still gets the usage
    }

    @Test
    void badInputWithJsonIsAnErrorObjectWithExitOne() throws Exception {
        commit(dir.resolve("repo"), "web-1", "20261124T000000.000Z-000001");
        assertThat(run(
                        "restore",
                        "--from",
                        dir.resolve("repo").toString(),
                        "--vm",
                        "web-1",
                        "--at",
                        "yesterday-ish",
                        "--out",
                        dir.resolve("o").toString(),
                        "--json"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(document().path("exitCode").asInt()).isEqualTo(Main.EXIT_INVALID);
    }

    @Test
    void listJsonIsOneArrayOfPoints() throws Exception {
        commit(dir.resolve("repo"), "web-1", "20261124T000000.000Z-000001");
        commit(dir.resolve("repo"), "web-2", "20261124T000000.000Z-000002");
        assertThat(run("list", "--from", dir.resolve("repo").toString(), "--json"))
                .isZero();
        JsonNode points = document();
        assertThat(points.isArray()).isTrue();
        assertThat(points.findValuesAsText("id"))
                .containsExactlyInAnyOrder("20261124T000000.000Z-000001", "20261124T000000.000Z-000002");
        assertThat(points.findValuesAsText("vm")).containsExactlyInAnyOrder("web-1", "web-2");
    }

    @Test
    void replicateJsonSaysPerPointWhatWasSent() throws Exception {
        commit(dir.resolve("a"), "web-1", "20261124T000000.000Z-000001");
        Path b = Files.createDirectories(dir.resolve("b"));
        assertThat(run("replicate", "--from", dir.resolve("a").toString(), "--to", b.toString(), "--json"))
                .isZero();
        JsonNode first = document();
        assertThat(first.path("restorePoints").get(0).path("outcome").asText()).isEqualTo("copied");
        assertThat(first.path("restorePoints").get(0).path("vm").asText()).isEqualTo("web-1");
        assertThat(first.path("objectsSent").asLong()).isPositive();
        assertThat(run("replicate", "--from", dir.resolve("a").toString(), "--to", b.toString(), "--json"))
                .isZero();
        assertThat(document().path("restorePoints").get(0).path("outcome").asText())
                .isEqualTo("already-there");
    }

    @Test
    void replicateTakesTheSameSourcesAsRestoreLocalAndTargetsOfTheConfigByName() throws Exception {
        commit(dir.resolve("data").resolve("repo"), "web-1", "20261124T000000.000Z-000001");
        Path vault = Files.createDirectories(dir.resolve("vault"));
        Path config = Files.writeString(
                dir.resolve("engine.yaml"),
                "data: %s\ntargets:\n  vault: {type: file, path: %s}\n".formatted(dir.resolve("data"), vault));
        assertThat(run("replicate", "--config", config.toString(), "--from", "local", "--to", "vault", "--json"))
                .isZero();
        assertThat(document().path("restorePoints").get(0).path("outcome").asText())
                .isEqualTo("copied");
        assertThat(run("list", "--config", config.toString(), "--from", "vault", "--json"))
                .isZero();
        assertThat(document().get(0).path("id").asText()).isEqualTo("20261124T000000.000Z-000001");
        // a bare name the config lacks is an error naming those it has, not a directory created in ./
        assertThat(run("replicate", "--config", config.toString(), "--from", "local", "--to", "vaul", "--json"))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(document().path("error").asText()).contains("vault");
    }

    @Test
    void policyLintJsonListsEachProblemWithFileLineAndKey() throws Exception {
        Path bad = Files.writeString(
                dir.resolve("bad.yaml"),
                "name: web\nvms:\n  names: [web-1]\nschedule:\n  interval: 15 minutes\nrpo: 30m\n");
        assertThat(run("policy", "lint", bad.toString(), "--json")).isEqualTo(Main.EXIT_INVALID);
        JsonNode report = document();
        assertThat(report.path("policies").asInt()).isZero();
        JsonNode problem = report.path("problems").get(0);
        assertThat(problem.path("file").asText()).endsWith("bad.yaml");
        assertThat(problem.path("line").asInt()).isEqualTo(5);
        assertThat(problem.path("key").asText()).isEqualTo("schedule.interval");
    }

    @Test
    void policyPlanJsonOnAnInvalidDirectoryIsTheErrorObjectWithTheProblems() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"), "name: web\nvms: {names: [a]}\nschedul:\n  interval: 1m\nrpo: 1h\n");
        assertThat(run("policy", "plan", policies.toString(), "--json")).isEqualTo(Main.EXIT_INVALID);
        JsonNode error = document();
        assertThat(error.path("exitCode").asInt()).isEqualTo(Main.EXIT_INVALID);
        assertThat(error.path("detail").get(0).path("key").asText()).contains("schedul");
    }

    @Test
    void listReadsTheLocalRepositoryByDefault() throws Exception {
        Path data = dir.resolve("data");
        commit(data.resolve("repo"), "web-1", "20261124T000000.000Z-000001");
        assertThat(run("list", "--data", data.toString(), "--json"))
                .as(std.err())
                .isZero();
        assertThat(document().findValuesAsText("vm")).containsExactly("web-1");
        assertThat(run("list", "--data", data.toString(), "--from", "local")).isZero();
        assertThat(std.out()).contains("20261124T000000.000Z-000001");
    }

    @Test
    void listReadsATargetOfTheEngineConfigByName() throws Exception {
        Path vault = dir.resolve("vault");
        commit(vault, "db-1", "20261124T000000.000Z-000003");
        Path config = Files.writeString(
                dir.resolve("engine.yaml"),
                "data: %s\ntargets:\n  vault: {type: file, path: %s}\n".formatted(dir.resolve("data"), vault));
        assertThat(run("list", "--config", config.toString(), "--from", "vault", "--json"))
                .as(std.err())
                .isZero();
        assertThat(document().findValuesAsText("id")).containsExactly("20261124T000000.000Z-000003");
    }

    @Test
    void listFromANameTheConfigLacksNamesTheTargetsItHas() throws Exception {
        Path config = Files.writeString(
                dir.resolve("engine.yaml"), "targets:\n  vault: {type: file, path: %s}\n".formatted(dir.resolve("v")));
        assertThat(run("list", "--config", config.toString(), "--from", "valut", "--json"))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(document().path("error").asText())
                .contains("no target named 'valut'")
                .contains("vault");
    }

    @Test
    void completionPrintsTheBashScriptOfTheWholeTree() throws Exception {
        assertThat(run("completion")).isZero();
        assertThat(std.out())
                .contains("complete -F")
                .contains("tidemark")
                .contains("restore-instant")
                .contains("change-passphrase"); // a subcommand of a subcommand
        assertThat(run("completion", "bash", "--json")).isZero();
        assertThat(document().path("script").asText()).contains("complete -F");
        assertThat(run("completion", "fish")).isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("bash only");
    }

    @Test
    void runJsonLogsJsonLines() throws Exception {
        try {
            assertThat(JsonLogs.useJsonLines()).isTrue();
            org.slf4j.LoggerFactory.getLogger("io.tidemark.test").warn("a warning for the shipper");
            String line = std.err()
                    .lines()
                    .filter(l -> l.contains("a warning for the shipper"))
                    .findFirst()
                    .orElseThrow();
            JsonNode event = Json.mapper().readTree(line);
            assertThat(event.path("level").asText()).isEqualTo("WARN");
            assertThat(event.path("message").asText()).isEqualTo("a warning for the shipper");
            assertThat(std.out()).doesNotContain("a warning for the shipper");
        } finally { // the other tests log as configured
            var context = (ch.qos.logback.classic.LoggerContext) org.slf4j.LoggerFactory.getILoggerFactory();
            context.reset();
            new ch.qos.logback.classic.util.ContextInitializer(context).autoConfig();
        }
    }

    @Test
    void runJsonWithABadPolicyIsTheErrorObject() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"), "name: web\nvms: {names: [a]}\nschedul:\n  interval: 1m\nrpo: 1h\n");
        assertThat(run(
                        "run",
                        "--policies",
                        policies.toString(),
                        "--qmp-dir",
                        dir.toString(),
                        "--data",
                        dir.resolve("data").toString(),
                        "--json"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(document().path("error").asText()).contains("web.yaml:3:1");
    }
}
