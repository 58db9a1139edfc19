package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The command line: exit codes and messages a script or a person relies on. */
class MainTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void lintAcceptsTheExamplePolicies() {
        assertThat(Main.execute("policy", "lint", "../policies/examples")).isZero();
        assertThat(std.out()).contains("policies OK");
    }

    @Test
    void lintReportsFileLineColumnAndKeyAndExitsOne() throws Exception {
        Files.writeString(
                dir.resolve("bad.yaml"),
                """
                name: web
                vms:
                  names: [web-1]
                schedule:
                  interval: 15 minutes
                rpo: 30m
                """);
        assertThat(Main.execute("policy", "lint", dir.toString())).isEqualTo(1);
        assertThat(std.err()).contains("bad.yaml:5:").contains("schedule.interval");
    }

    @Test
    void restoreFromAnEmptyLocationSaysWhatIsWrongAndExitsTwo() {
        assertThat(Main.execute(
                        "restore",
                        "--from",
                        dir.toString(),
                        "--vm",
                        "web-1",
                        "--out",
                        dir.resolve("o").toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("no Tidemark repository at").contains(dir.toString());
    }

    @Test
    void helpTeachesTheCommands() {
        assertThat(Main.execute("--help")).isZero();
        assertThat(std.out())
                .contains("run")
                .contains("restore")
                .contains("demo")
                .contains("Exit codes");
    }

    @Test
    void runWithAMalformedPolicyNamesTheFileAndLineAndStartsNothing() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"), "name: web\nvms: {names: [a]}\nschedul:\n  interval: 1m\nrpo: 1h\n");
        assertThat(Main.execute(
                        "run",
                        "--policies",
                        policies.toString(),
                        "--qmp-dir",
                        dir.toString(),
                        "--data",
                        dir.resolve("data").toString()))
                .isEqualTo(1);
        assertThat(std.err()).contains("web.yaml:3:1").contains("schedul");
        assertThat(dir.resolve("data/kafka")).doesNotExist();
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("io.tidemark.cli.Main#commandPaths")
    void everyCommandTeachesWithHelp(String command) { // the whole tree, walked by Main.commandPaths
        String[] args = (command + " --help").split(" ");
        assertThat(Main.execute(args)).as(std.err()).isZero();
        assertThat(std.out()).contains("Usage: tidemark " + command).contains("--help");
    }

    @Test
    void runWithAMissingPolicyDirectorySaysSo() {
        assertThat(Main.execute(
                        "run",
                        "--policies",
                        dir.resolve("nope").toString(),
                        "--qmp-dir",
                        dir.toString(),
                        "--data",
                        dir.resolve("data").toString()))
                .isEqualTo(Main.EXIT_INVALID); // a PolicyException: bad input, not a failure to retry
        assertThat(std.err()).contains("nope");
    }

    @Test
    void statusShowsTheRpoPerLocationAndExitsFourWhenViolated() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("web.yaml"),
                "name: web\nvms: {names: [web-1, web-2]}\n" + "schedule: {interval: 10m}\nrpo: 1h\n");
        Path data = dir.resolve("data");
        try (var target =
                new io.tidemark.targets.file.FileObjectTarget(Files.createDirectories(data.resolve("repo")))) {
            var repo = io.tidemark.repository.Repository.openOrInit(
                    target, io.tidemark.format.RepositoryConfig.defaults());
            java.time.Instant now = java.time.Instant.now();
            repo.commit(manifest("web-1", now.minus(java.time.Duration.ofMinutes(5))));
            repo.commit(manifest("web-2", now.minus(java.time.Duration.ofHours(2))));
        }
        assertThat(Main.execute("status", "--data", data.toString(), "--policies", policies.toString()))
                .isEqualTo(4);
        assertThat(std.out())
                // measured against the wall clock a moment after the point was made: 5m, or 5m and a few seconds
                .containsPattern("web-1 +local +web .* 5m(\\d+s)? +1h\\n")
                .containsPattern("web-2 +local +web .* 2h +1h +VIOLATED");
    }

    private static io.tidemark.core.repository.Manifest manifest(String vm, java.time.Instant at) {
        return new io.tidemark.core.repository.Manifest(
                1,
                io.tidemark.format.RestorePointIds.next(at, new java.util.Random(1)),
                vm,
                "hv1",
                "job-" + vm,
                at,
                at,
                io.tidemark.core.event.ConsistencyAchieved.CRASH,
                io.tidemark.core.event.Trigger.manual(),
                "web",
                java.util.Optional.empty(),
                java.util.List.of());
    }

    @Test
    void replicateSeedsAnotherRepositoryAndRestoreFromItIsBitIdentical() throws Exception {
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = Files.createDirectories(dir.resolve("b"));
        byte[] disk = new byte[4 << 20];
        new java.util.Random(3).nextBytes(disk);
        java.util.Arrays.fill(disk, 1 << 20, 3 << 20, (byte) 0); // a zero region: never stored
        try (var target = new io.tidemark.targets.file.FileObjectTarget(a)) {
            var repo = io.tidemark.repository.Repository.openOrInit(
                    target, io.tidemark.format.RepositoryConfig.defaults());
            var index = repo.newIndex(disk.length, java.util.Optional.empty());
            int chunk = repo.config().chunkSize();
            for (int c = 0; c * chunk < disk.length; c++) {
                byte[] slice = java.util.Arrays.copyOfRange(disk, c * chunk, (c + 1) * chunk);
                index.set(c, repo.putChunk(slice, chunk).digest());
            }
            java.time.Instant now = java.time.Instant.now();
            repo.commit(new io.tidemark.core.repository.Manifest(
                    1,
                    "20261124T000000.000Z-000001",
                    "web-1",
                    "hv1",
                    "j1",
                    now,
                    now,
                    io.tidemark.core.event.ConsistencyAchieved.CRASH,
                    io.tidemark.core.event.Trigger.manual(),
                    "web",
                    java.util.Optional.empty(),
                    java.util.List.of(new io.tidemark.core.repository.DiskEntry(
                            "sd0",
                            disk.length,
                            chunk,
                            index.finish().hex(),
                            "tm-1",
                            java.util.Optional.of(io.tidemark.core.event.FullReason.of(
                                    io.tidemark.core.event.FullReason.Kind.FIRST_BACKUP, "first backup")),
                            disk.length,
                            disk.length))));
        }
        assertThat(Main.execute("replicate", "--from", a.toString(), "--to", b.toString()))
                .isZero();
        assertThat(std.out()).contains("1 restore points in");
        assertThat(Main.execute("replicate", "--from", a.toString(), "--to", b.toString()))
                .isZero();
        assertThat(std.out()).contains("already there");

        assertThat(Main.execute(
                        "restore",
                        "--from",
                        b.toString(),
                        "--vm",
                        "web-1",
                        "--out",
                        dir.resolve("r").toString(),
                        "--json"))
                .isZero();
        String expected = io.tidemark.format.Digest.sha256(disk).hex();
        assertThat(std.out()).contains("\"sha256\" : \"" + expected + "\"");
        assertThat(io.tidemark.repository.Restorer.sha256(dir.resolve("r/sd0.raw")))
                .isEqualTo(expected);
    }

    @Test
    void everyDurationOptionTakesThePolicySyntaxAndStillIsoEightySixOhOne() {
        assertThat(Main.duration("90s")).isEqualTo(java.time.Duration.ofSeconds(90));
        assertThat(Main.duration("1h30m")).isEqualTo(java.time.Duration.ofMinutes(90));
        assertThat(Main.duration("PT5M")).isEqualTo(java.time.Duration.ofMinutes(5));
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Main.duration("5 minutes"))
                .hasMessageContaining("'5 minutes' is not a duration: write it like 30s, 5m or 1h30m");
    }
}
