package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/**
 * What every command of the tree (walked by {@link Main#commandPaths}) promises a person or a
 * script: {@code --json}, a one-sentence summary, an example, help text printed as written.
 */
class CommandTreeTest {

    static List<String> leafCommands() {
        return Main.commandPaths().stream()
                .filter(p -> command(p).getSubcommands().isEmpty())
                .toList();
    }

    static CommandLine command(String path) {
        CommandLine c = Main.commandLine();
        for (String name : path.split(" ")) {
            c = c.getSubcommands().get(name);
        }
        return c;
    }

    @ParameterizedTest
    @MethodSource("leafCommands")
    void everyLeafCommandAcceptsJson(String path) {
        assertThat(command(path).getCommandSpec().findOption("--json"))
                .as("tidemark %s --json", path)
                .isNotNull();
    }

    @ParameterizedTest
    @MethodSource("io.tidemark.cli.Main#commandPaths")
    void everySummaryIsACompleteSentence(String path) {
        CommandSpec spec = command(path).getCommandSpec();
        String[] description = spec.usageMessage().description();
        String[] header = spec.usageMessage().header();
        // what the command list of the parent shows: the header's first line, else the description's
        String summary = header.length > 0 ? header[0] : description.length > 0 ? description[0] : "";
        assertThat(summary)
                .as("the summary of tidemark %s", path)
                .matches(Pattern.compile("^[A-Z].*[^,;:]\\.$", Pattern.DOTALL));
    }

    @ParameterizedTest
    @MethodSource("leafCommands")
    void everyLeafCommandShowsAnExample(String path) {
        String usage = command(path).getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertThat(usage).as("tidemark %s --help", path).contains("Example");
    }

    /**
     * Picocli wraps a line longer than the usage width wherever a space falls, which breaks
     * examples and URLs: every example, heading and indented line of a description or footer must
     * come out whole (prose is joined into paragraphs that picocli wraps once).
     */
    @ParameterizedTest
    @MethodSource("io.tidemark.cli.Main#commandPaths")
    void examplesAndHeadingsArePrintedAsWrittenNotReWrapped(String path) {
        CommandLine cli = command(path);
        List<String> printed =
                List.of(cli.getUsageMessage(CommandLine.Help.Ansi.OFF).split("\\R"));
        List<String> written = new ArrayList<>();
        written.addAll(List.of(cli.getCommandSpec().usageMessage().description()));
        written.addAll(List.of(cli.getCommandSpec().usageMessage().footer()));
        for (String text : written) {
            for (String line : String.format(text).split("\\R")) {
                boolean asWritten = !line.isBlank()
                        && (Character.isWhitespace(line.charAt(0))
                                || line.startsWith("Example")
                                || line.stripTrailing().endsWith(":"));
                if (asWritten) {
                    assertThat(printed)
                            .as("tidemark %s --help prints this line whole", path)
                            .anyMatch(p -> p.stripTrailing().equals(line.stripTrailing()));
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void theTopLevelHelpPrintsItsExamplesWhole() {
        assertThat(Main.commandLine().getUsageMessage(CommandLine.Help.Ansi.OFF))
                .contains("\n  tidemark run --qmp-dir DIR --policies DIR   # everything on one machine")
                .contains("\n  tidemark demo ")
                .contains("\n  source <(tidemark completion) ");
    }

    @org.junit.jupiter.api.Test
    void proseLinesBecomeOneParagraphAndExamplesStayAsWritten() {
        assertThat(Main.paragraphs(
                        new String[] {
                            "Restore one point.",
                            "It reads the chunks in",
                            "parallel and checks them.",
                            "",
                            "Examples:",
                            "  tidemark restore --vm web-1 \\",
                            "      --out /srv/r",
                            "Runbook: docs/runbooks/restore.md"
                        },
                        true))
                .containsExactly(
                        "Restore one point.",
                        "It reads the chunks in parallel and checks them.",
                        "",
                        "Examples:",
                        "  tidemark restore --vm web-1 \\",
                        "      --out /srv/r",
                        "Runbook: docs/runbooks/restore.md");
    }
}
