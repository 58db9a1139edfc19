package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.file.Durability;
import io.tidemark.targets.file.FileObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code durability:} of a directory target and of a directory primary (ADR 25, docs/configuration.md):
 * read from the engine config and from {@code file:} locations, the default unchanged, and a wrong
 * value reported at its key with the values allowed.
 */
class EngineConfigDurabilityTest {

    @TempDir
    Path dir;

    private Path config(String yaml) throws Exception {
        return Files.writeString(dir.resolve("tidemark.yaml"), yaml);
    }

    @Test
    void aDirectoryPrimaryOnAFileSystemOfItsOwnIsOpenedWithSyncfsBarriers() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("backup-volume"));
        EngineConfig c = EngineConfig.load(config(
                """
                repository:
                  type: file
                  path: %s
                  durability: filesystem
                """
                        .formatted(repo)));
        assertThat(c.primary()).isInstanceOfSatisfying(FileTargetSpec.class, f -> assertThat(f.durability())
                .isEqualTo(Durability.FILESYSTEM));
        try (ObjectTarget t = Targets.primary(c)) {
            assertThat(t).isInstanceOfSatisfying(FileObjectTarget.class, f -> assertThat(f.durability())
                    .isEqualTo(Durability.FILESYSTEM));
        }
    }

    @Test
    void theDefaultIsAnFsyncPerFile() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("repo"));
        EngineConfig c = EngineConfig.load(
                config("repository: " + repo + "\ntargets:\n  nas:\n    type: file\n    path: /mnt/nas\n"));
        try (ObjectTarget t = Targets.primary(c)) {
            assertThat(((FileObjectTarget) t).durability()).isEqualTo(Durability.PER_FILE);
        }
        assertThat(((FileTargetSpec) c.targets().get("nas")).durability()).isEqualTo(Durability.PER_FILE);
    }

    @Test
    void aTargetEntryTakesIt() throws Exception {
        EngineConfig c = EngineConfig.load(
                config(
                        """
                targets:
                  vault:
                    type: file
                    path: /mnt/vault
                    durability: filesystem
                """));
        assertThat(((FileTargetSpec) c.targets().get("vault")).durability()).isEqualTo(Durability.FILESYSTEM);
    }

    @Test
    void anUnknownValueIsReportedAtItsKeyWithTheAllowedValues() throws Exception {
        Path c = config(
                """
                targets:
                  vault:
                    type: file
                    path: /mnt/vault
                    durability: syncfs
                """);
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(c + ":5:")
                .hasMessageContaining("targets.vault.durability")
                .hasMessageContaining("per-file, filesystem")
                .hasMessageContaining("syncfs");
        Path r = config("repository:\n  type: file\n  path: /mnt/x\n  durability: fast\n");
        assertThatThrownBy(() -> EngineConfig.load(r))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("repository.durability")
                .hasMessageContaining("per-file, filesystem");
    }

    @Test
    void anS3TargetHasNoSuchKey() throws Exception {
        Path c = config(
                """
                targets:
                  offsite:
                    type: s3
                    bucket: b
                    durability: filesystem
                """);
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("targets.offsite.durability");
    }

    @Test
    void aFileLocationTakesItAsAQuery() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("vol"));
        try (ObjectTarget t = Locations.open(repo.toUri() + "?durability=filesystem")) {
            assertThat(((FileObjectTarget) t).durability()).isEqualTo(Durability.FILESYSTEM);
            assertThat(((FileObjectTarget) t).root()).isEqualTo(repo);
        }
        try (ObjectTarget t = Locations.open(repo.toUri().toString())) {
            assertThat(((FileObjectTarget) t).durability()).isEqualTo(Durability.PER_FILE);
        }
        assertThatThrownBy(() -> Locations.open(repo.toUri() + "?durability=quick"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("per-file, filesystem");
        assertThatThrownBy(() -> Locations.open(repo.toUri() + "?sync=fs"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("durability=<per-file|filesystem>");
    }
}
