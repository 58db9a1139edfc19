package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.testkit.StdStreams;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class DrillCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @Test
    void helpTeachesTheBootCheck() {
        assertThat(Main.execute("drill", "--help")).isZero();
        assertThat(std.out())
                .contains("--boot")
                .contains("tidemark drill --config /etc/tidemark/engine.yaml --vm web-1 --boot")
                .contains("deploy/guest/build-tiny-guest.sh");
    }

    @Test
    void aBootDirectoryWithoutAKernelFailsBeforeRestoringAndSaysHowToBuildOne() {
        Path kernel = dir.resolve("no-guest");
        assertThat(Main.execute(
                        "drill",
                        "--data",
                        dir.resolve("data").toString(),
                        "--policies",
                        dir.resolve("policies").toString(),
                        "--vm",
                        "web-1",
                        "--scratch",
                        dir.resolve("scratch").toString(),
                        "--boot",
                        kernel.toString()))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err())
                .contains("no vmlinuz in the guest kernel directory " + kernel)
                .contains("deploy/guest/build-tiny-guest.sh " + kernel);
        assertThat(dir.resolve("scratch")).doesNotExist();
    }
}
