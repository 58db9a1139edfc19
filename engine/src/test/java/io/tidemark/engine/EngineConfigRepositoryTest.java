package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code repository:}, the primary repository a fleet's hosts share (docs/configuration.md). */
class EngineConfigRepositoryTest {

    @TempDir
    Path dir;

    private Path config(String yaml) throws Exception {
        return Files.writeString(dir.resolve("tidemark.yaml"), yaml);
    }

    @Test
    void withoutRepositoryThePrimaryIsTheHostLocalRepoDirectoryOfTheData() throws Exception {
        EngineConfig c = EngineConfig.load(config("data: /var/lib/tidemark\n"));
        assertThat(c.primaryIsDefault()).isTrue();
        assertThat(c.primary())
                .isEqualTo(FileTargetSpec.builder()
                        .path(Path.of("/var/lib/tidemark/repo"))
                        .build());
        assertThat(EngineConfig.empty().primary())
                .isInstanceOfSatisfying(FileTargetSpec.class, f -> assertThat(f.path())
                        .isEqualTo(EngineConfig.DEFAULT_DATA.resolve("repo")));
    }

    @Test
    void aDirectoryNamesASharedFilePrimaryWhichEveryCommandOpensAsLocal() throws Exception {
        Path shared = Files.createDirectories(dir.resolve("nfs/tidemark"));
        EngineConfig c = EngineConfig.load(config("data: /var/lib/tidemark\nrepository: " + shared + "\n"));
        assertThat(c.primaryIsDefault()).isFalse();
        assertThat(c.primary()).isInstanceOfSatisfying(FileTargetSpec.class, f -> assertThat(f.path())
                .isEqualTo(shared));
        try (ObjectTarget local = Targets.named(c, "local")) {
            assertThat(local).isInstanceOf(FileObjectTarget.class);
            assertThat(local.describe()).contains(shared.toString());
        }
    }

    @Test
    void aMappingIsReadLikeATargetWithItsSecretsNamedNotWritten() throws Exception {
        Path secret = Files.writeString(dir.resolve("s3.secret"), "very-secret\n");
        EngineConfig c = EngineConfig.load(config(
                """
                repository:
                  type: s3
                  endpoint: http://127.0.0.1:8081
                  bucket: fleet
                  prefix: primary
                  pathStyle: true
                  accessKeyEnv: TIDEMARK_PRIMARY_ACCESS_KEY
                  secretKeyFile: %s
                  retryDeadline: 2m
                """
                        .formatted(secret)));
        assertThat(c.primary()).isInstanceOfSatisfying(S3TargetSpec.class, s -> {
            assertThat(s.endpoint()).isEqualTo(URI.create("http://127.0.0.1:8081"));
            assertThat(s.bucket()).isEqualTo("fleet");
            assertThat(s.prefix()).startsWith("primary");
            assertThat(s.transfer().retryDeadline()).hasMinutes(2);
        });
        assertThat(c.toString()).doesNotContain("very-secret");
        assertThat(c.targets()).as("the primary is not a replication target").isEmpty();
    }

    @Test
    void aWrongRepositorySettingIsReportedAtItsKeyInTheFile() throws Exception {
        Path c = config(
                """
                host: hv1
                repository:
                  type: s3
                  bucket: fleet
                  secretKey: inline-secret
                """);
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining(c + ":5:")
                .hasMessageContaining("repository.secretKey")
                .hasMessageNotContaining("inline-secret");
    }

    @Test
    void anUnknownRepositoryTypeNamesTheTypesThereAre() throws Exception {
        Path c = config("repository:\n  type: nfs\n  path: /mnt/x\n");
        assertThatThrownBy(() -> EngineConfig.load(c))
                .isInstanceOf(InvalidInputException.class)
                .hasMessageContaining("repository.type")
                .hasMessageContaining("expected one of: s3, rados, file");
    }
}
