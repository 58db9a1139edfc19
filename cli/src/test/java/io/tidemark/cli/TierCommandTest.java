package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark tier} on targets that cannot tier, and with nothing to do (S3 paths: TierCommandIT). */
class TierCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    private Path config(String tiers) throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [db-1]}
                schedule:
                  interval: 1h
                rpo: 2h
                targets: [nas]
                """
                        + tiers);
        return Files.writeString(
                dir.resolve("tidemark.yaml"),
                """
                data: %s
                policies: %s
                targets:
                  nas:
                    type: file
                    path: %s
                """
                        .formatted(dir.resolve("data"), policies, dir.resolve("nas")));
    }

    @Test
    void aStorageClassAtAFileTargetIsInvalidInputNamingTheTarget() throws Exception {
        Path c = config(
                """
                tiers:
                  warm: {location: nas, keep: 30d}
                  cold: {location: nas, storage-class: GLACIER, keep: 1y}
                """);
        for (String sub : new String[] {"check", "apply", "sweep"}) {
            std.reset();
            assertThat(Main.execute("tier", sub, "--config", c.toString()))
                    .as(sub)
                    .isEqualTo(1);
            assertThat(std.err()).as(sub).contains("target 'nas'").contains("is not an S3 target");
        }
    }

    @Test
    void withoutStorageClassesThereIsNothingToCheckOrTag() throws Exception {
        Path c = config("tiers:\n  warm: {location: nas, keep: 30d}\n");
        assertThat(Main.execute("tier", "check", "--config", c.toString(), "--json"))
                .isZero();
        assertThat(std.out()).contains("\"inSync\" : true").contains("\"targets\" : [ ]");
        std.reset();
        assertThat(Main.execute("tier", "sweep", "--config", c.toString(), "--json"))
                .isZero();
        assertThat(std.out()).contains("\"targets\" : [ ]");
    }

    @Test
    void anUnknownTargetNamesThoseTheConfigHas() throws Exception {
        Path c = config("");
        assertThat(Main.execute("tier", "check", "--config", c.toString(), "--target", "offsite"))
                .isEqualTo(2);
        assertThat(std.err()).contains("target 'offsite' is not in the engine config; it defines nas");
    }
}
