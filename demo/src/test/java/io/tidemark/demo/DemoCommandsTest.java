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

    /** The commands this module adds keep the promises of the cli module's CommandTreeTest. */
    @ParameterizedTest
    @ValueSource(strings = {"demo", "bench", "bench soak", "bench dr"})
    void demoAndBenchHaveASentenceSummaryAnExampleAndJson(String path) {
        picocli.CommandLine c = Main.commandLine();
        for (String name : path.split(" ")) {
            c = c.getSubcommands().get(name);
        }
        assertThat(c.getCommandSpec().findOption("--json"))
                .as("tidemark %s --json", path)
                .isNotNull();
        assertThat(c.getCommandSpec().usageMessage().description()[0])
                .as("the summary of tidemark %s", path)
                .matches("^[A-Z].*[^,;:]\\.$");
        assertThat(c.getUsageMessage(picocli.CommandLine.Help.Ansi.OFF)).contains("Example");
    }
}
