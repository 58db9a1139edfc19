package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code policy plan} and {@code policy diff}: what a reviewer of a policy change reads. */
class PolicyCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @BeforeEach
    void fixTheClock() {
        PolicyCommand.clock = Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC);
    }

    @AfterEach
    void restoreTheClock() {
        PolicyCommand.clock = Clock.systemUTC();
    }

    private Path write(String subdir, String file, String yaml) throws Exception {
        Path d = Files.createDirectories(dir.resolve(subdir));
        Files.writeString(d.resolve(file), yaml);
        return d;
    }

    private static String policy(String name, String interval, String rpo) {
        return "name: " + name + "\nvms: {names: [" + name + "-1]}\nschedule:\n  interval: " + interval + "\nrpo: "
                + rpo + "\n";
    }

    @Test
    void planOfTheExamplesListsFiringsAndRetentionAndExitsZero() {
        assertThat(Main.execute("policy", "plan", "../policies/examples")).isZero();
        assertThat(std.out())
                .contains("web-tier: every 15m, jitter 30s, rpo 30m: feasible")
                .contains("next: 2026-01-01T00:")
                .contains("offsite-s3: keeps")
                .contains("all feasible");
    }

    @Test
    void planOfAnInfeasiblePolicySaysWhyAndExitsOne() throws Exception {
        Path d = write("p", "web.yaml", policy("web", "1h", "30m"));
        assertThat(Main.execute("policy", "plan", d.toString())).isEqualTo(1);
        assertThat(std.err()).contains("web: interval 1h + 1m backup exceeds rpo 30m");
        assertThat(std.out()).contains("INFEASIBLE").contains("1 infeasible");
    }

    @Test
    void planChecksShippingWhenGivenChangeRateAndBandwidth() throws Exception {
        Path d = write("p", "web.yaml", policy("web", "15m", "30m"));
        assertThat(Main.execute("policy", "plan", d.toString())).isZero();
        std.reset();
        assertThat(Main.execute(
                        "policy", "plan", d.toString(), "--change-rate", "36000", "--bandwidth", "10", "--days", "1"))
                .isEqualTo(1);
        assertThat(std.err()).contains("15m to ship 9000 MB at 10 MB/s exceeds rpo 30m");
    }

    @Test
    void planFiltersByVmAndPrintsJson() throws Exception {
        Path d = write("p", "web.yaml", policy("web", "15m", "30m"));
        write("p", "db.yaml", policy("db", "1h", "30m"));
        assertThat(Main.execute("policy", "plan", d.toString(), "--vms", "web-1", "--json", "--days", "2"))
                .isZero();
        assertThat(std.out())
                .contains("\"policy\" : \"web\"")
                .doesNotContain("\"db\"")
                .contains("\"feasible\" : true")
                .contains("\"kept\" : 192");
    }

    @Test
    void planEstimatesTheBytesPerTier() throws Exception {
        Path d = write(
                "p",
                "db.yaml",
                policy("db", "1h", "2h") + "targets: [offsite]\ntiers:\n  hot: {location: local, keep: 7d}\n"
                        + "  warm: {location: offsite, keep: 90d}\n"
                        + "  cold: {location: offsite, storage-class: GLACIER, keep: 7y}\n");
        assertThat(Main.execute("policy", "plan", d.toString())).isZero();
        assertThat(std.out()).contains("tiers: give --change-rate (and --full-size) to estimate the bytes per tier");
        std.reset();
        assertThat(Main.execute(
                        "policy",
                        "plan",
                        d.toString(),
                        "--change-rate",
                        "100",
                        "--bandwidth",
                        "100",
                        "--full-size",
                        "50000"))
                .isZero();
        assertThat(std.out()).contains("tier hot (local): holds ").contains("tier cold (offsite, GLACIER): holds ");
        std.reset();
        assertThat(Main.execute("policy", "plan", d.toString(), "--change-rate", "100", "--bandwidth", "100", "--json"))
                .isZero();
        assertThat(std.out())
                .contains("\"storageClass\" : \"GLACIER\"")
                .contains("\"storedBytes\" : 6132000000000")
                .contains("\"inBytesPerMonth\" : 73050000000");
    }

    @Test
    void planOfAnInvalidDirectoryReportsLikeLint() throws Exception {
        Path d = write("p", "bad.yaml", "name: web\nvms: {names: [a]}\nschedule:\n  interval: 15 minutes\nrpo: 1h\n");
        assertThat(Main.execute("policy", "plan", d.toString())).isEqualTo(1);
        assertThat(std.err()).contains("bad.yaml:4:").contains("schedule.interval");
    }

    @Test
    void diffListsAddedRemovedAndChangedKeys() throws Exception {
        Path main = write("main", "web.yaml", policy("web", "15m", "30m"));
        write("main", "old.yaml", policy("old", "1h", "2h"));
        Path pr = write("pr", "web.yaml", policy("web", "10m", "30m"));
        write("pr", "new.yaml", policy("new", "1h", "2h"));
        assertThat(Main.execute("policy", "diff", pr.toString(), "--against", main.toString()))
                .isZero();
        assertThat(std.out()).contains("+ new").contains("- old").contains("~ web: schedule");
        std.reset();
        assertThat(Main.execute("policy", "diff", pr.toString(), "--against", main.toString(), "--json"))
                .isZero();
        assertThat(std.out()).contains("\"added\" : [ \"new\" ]").contains("\"web\" : [ \"schedule\" ]");
    }

    @Test
    void diffOfIdenticalDirectoriesSaysSo() throws Exception {
        Path main = write("main", "web.yaml", policy("web", "15m", "30m"));
        assertThat(Main.execute("policy", "diff", main.toString(), "--against", main.toString()))
                .isZero();
        assertThat(std.out()).contains("no policy changed");
    }

    @Test
    void lintTakesFilesAsWellAsDirectoriesAndWithTheConfigChecksTheTargetsTheyName() throws Exception {
        Path d = write(
                "lint",
                "web.yaml",
                "name: web\nvms: {names: [web-1]}\nschedule: {interval: 10m}\nrpo: 1h\ntargets: [offsite, nas]\n");
        write("lint", "db.yaml", "name: db\nvms: {names: [db-1]}\nschedule: {interval: 10m}\nrpo: 1h\n");
        Path web = d.resolve("web.yaml");

        assertThat(Main.execute(
                        "policy", "lint", web.toString(), d.resolve("db.yaml").toString()))
                .as(std.err())
                .isZero();
        assertThat(std.out()).contains("2 policies OK");

        Path config = Files.writeString(
                dir.resolve("tidemark.yaml"), "targets:\n  offsite:\n    type: file\n    path: /srv/offsite\n");
        std.reset();
        assertThat(Main.execute("policy", "lint", d.toString(), "--config", config.toString()))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err())
                .contains(web.toString())
                .contains("targets: target 'nas' is not defined in the engine config (defined: offsite)")
                .doesNotContain("'offsite' is not defined");

        std.reset();
        assertThat(Main.execute("policy", "lint", dir.resolve("missing.yaml").toString()))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("missing.yaml");
    }

    @Test
    void withTheConfigLintMeasuresABudgetAgainstAFullRestorePointInTheRepository() throws Exception {
        // a repository holding one restore point of db-1: 4 chunks of random data
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        io.tidemark.repository.Repository repo = io.tidemark.repository.Repository.openOrInit(
                new io.tidemark.targets.file.FileObjectTarget(repoDir), io.tidemark.format.RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        io.tidemark.repository.DiskIndexBuilder index = repo.newIndex(4L * chunk, java.util.Optional.empty());
        java.util.Random random = new java.util.Random(5);
        for (int c = 0; c < 4; c++) {
            byte[] data = new byte[chunk];
            random.nextBytes(data);
            index.set(c, repo.putChunk(data, chunk).digest());
        }
        Instant at = Instant.parse("2026-01-01T00:00:00Z");
        repo.commit(new io.tidemark.core.repository.Manifest(
                1,
                io.tidemark.format.RestorePointIds.next(at, random),
                "db-1",
                "hv1",
                "j1",
                at,
                at,
                io.tidemark.core.event.ConsistencyAchieved.CRASH,
                io.tidemark.core.event.Trigger.manual(),
                "db",
                java.util.Optional.empty(),
                java.util.List.of(new io.tidemark.core.repository.DiskEntry(
                        "sda", 4L * chunk, chunk, index.finish().hex(), "c1", java.util.Optional.empty(), 0, 0))));
        Path config = Files.writeString(dir.resolve("tidemark.yaml"), "repository: " + repoDir + "\n");
        Path d = write(
                "budget",
                "db.yaml",
                "name: db\nvms: {names: [db-1]}\nschedule: {interval: 10m}\nrpo: 1h\nbudget:\n  local: 1KiB\n");

        assertThat(Main.execute("policy", "lint", d.toString(), "--config", config.toString()))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err())
                .contains(d.resolve("db.yaml") + ":6:10: budget.local: budget 1.0KiB is smaller than one full"
                        + " restore point of VM 'db-1' at local (" + io.tidemark.policies.SizeSyntax.format(4L * chunk)
                        + ", its newest point");

        // without the config the budget cannot be measured: a warning, not a failure
        std.reset();
        assertThat(Main.execute("policy", "lint", d.toString())).isZero();
        assertThat(std.err()).contains("warning: capacity budgets are not checked");

        // a budget that holds the point passes
        write(
                "budget",
                "db.yaml",
                "name: db\nvms: {names: [db-1]}\nschedule: {interval: 10m}\nrpo: 1h\nbudget:\n  local: 1GiB\n");
        std.reset();
        assertThat(Main.execute("policy", "lint", d.toString(), "--config", config.toString()))
                .as(std.err())
                .isZero();
    }
}
