package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.recovery.DrChecks;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class DrCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void anInvalidPlanIsBadInputNamingFileLineAndKey() throws Exception {
        Path plan = dir.resolve("plan.yaml");
        Files.writeString(plan, "site: s\nsorce: t\nwork-dir: /w\ngroups: [{name: g, vms: [{name: a}]}]\n");
        assertThat(Main.execute("dr", "failover", "--plan", plan.toString(), "--dry-run"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err())
                .contains(plan + ":1:1: source: missing required key 'source'")
                .contains(plan + ":2:1: sorce: unknown key 'sorce'; did you mean 'source'?");
        assertThat(dir.resolve("w")).doesNotExist();
    }

    @Test
    void aSourceTheEngineConfigLacksIsNamed() throws Exception {
        Path plan = dir.resolve("plan.yaml");
        Files.writeString(plan, "site: s\nsource: offsite\nwork-dir: /w\ngroups: [{name: g, vms: [{name: a}]}]\n");
        assertThat(Main.execute("dr", "failover", "--plan", plan.toString(), "--dry-run"))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("restores from target 'offsite', which the engine config does not define");
    }

    @Test
    void failbackNeedsAHomeDirectory() throws Exception {
        Path plan = dir.resolve("plan.yaml");
        Files.writeString(plan, "site: s\nsource: t\nwork-dir: /w\ngroups: [{name: g, vms: [{name: a}]}]\n");
        assertThat(Main.execute("dr", "failback", "--plan", plan.toString())).isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("has no home-dir; say where the disks go at home with --to DIR");
    }

    @Test
    void drWithoutASubcommandShowsTheUsage() {
        assertThat(Main.execute("dr")).isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("failover").contains("failback");
    }

    @Test
    void theDryRunChecksFindAnUnwritableOrMissingWorkDir() throws Exception {
        Path file = Files.writeString(dir.resolve("not-a-dir"), "x");
        assertThat(DrChecks.writable(file.resolve("dr")))
                .hasValueSatisfying(p -> assertThat(p).contains("is not a directory"));
        assertThat(DrChecks.writable(dir.resolve("a/b/c"))).isEmpty();
        assertThat(dir.resolve("a")).doesNotExist();
        assertThat(DrChecks.onPath("definitely-not-a-binary-" + System.nanoTime()))
                .isFalse();
    }
}
