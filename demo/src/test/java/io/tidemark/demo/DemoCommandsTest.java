package io.tidemark.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.cli.Main;
import io.tidemark.testkit.StdStreams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DemoCommandsTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void theDemoModuleAddsDemoAndBenchToTheCommandLine() {
        assertThat(Main.commandPaths()).contains("demo", "bench", "run", "restore");
    }

    @ParameterizedTest
    @ValueSource(strings = {"demo", "bench"})
    void demoAndBenchTeachWithHelp(String command) {
        assertThat(Main.execute(command, "--help")).as(std.err()).isZero();
        assertThat(std.out()).contains("Usage: tidemark " + command).contains("--help");
    }
}
