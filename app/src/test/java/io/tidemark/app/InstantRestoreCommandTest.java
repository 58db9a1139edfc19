package io.tidemark.app;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.file.FileObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class InstantRestoreCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @Test
    void helpTeachesWithAnExample() {
        assertThat(Main.execute("restore-instant", "--help")).isZero();
        assertThat(std.out())
                .contains("Example:  tidemark restore-instant")
                .contains("--hydrate-to")
                .contains("docs/runbooks/instant-restore.md");
        std.reset();
        assertThat(Main.execute("--help")).isZero();
        assertThat(std.out()).contains("restore-instant");
    }

    @Test
    void aDeviceWithoutQemuIsBadInput() {
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        dir.toString(),
                        "--vm",
                        "web",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--device",
                        "virtio-blk-pci"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--device needs --qmp");
    }

    @Test
    void aMissingPointIsPermanentAndNamesTheVm() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("repo"));
        Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "nope",
                        "--dir",
                        dir.resolve("ir").toString()))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("no restore point of VM 'nope'");
        assertThat(dir.resolve("ir")).doesNotExist();
    }
}
