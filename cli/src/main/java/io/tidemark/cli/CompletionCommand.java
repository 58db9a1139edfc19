package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.format.Json;
import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
        name = "completion",
        mixinStandardHelpOptions = true,
        description = {
            "Print the bash completion script of tidemark (zsh reads it too, after bashcompinit).",
            "",
            "It completes every command, subcommand and option of this tidemark, including those another",
            "module adds. The Debian package installs the same script in /usr/share/bash-completion.",
        },
        footerHeading = "%nExamples:%n",
        footer = {
            "  source <(tidemark completion)                      # this shell",
            "  tidemark completion bash > ~/.local/share/bash-completion/completions/tidemark",
            "  autoload -U bashcompinit && bashcompinit && source <(tidemark completion)   # zsh",
        })
final class CompletionCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(
            arity = "0..1",
            paramLabel = "SHELL",
            defaultValue = "bash",
            description = "bash, the only shell with a script (default: bash)")
    String shell;

    @Option(names = "--json", description = "print {\"shell\": \"bash\", \"script\": \"...\"} instead of the script")
    boolean json;

    @Override
    public Integer call() {
        if (!shell.equals("bash")) {
            throw new CommandFailure(
                    Main.EXIT_INVALID,
                    "no completion script for '" + shell + "': bash only (in zsh: autoload -U bashcompinit &&"
                            + " bashcompinit && source <(tidemark completion))");
        }
        String script = script(spec.root().commandLine());
        if (json) {
            ObjectNode o = Json.mapper().createObjectNode();
            o.put("shell", shell);
            o.put("script", script);
            JsonOutput.print(o);
        } else {
            System.out.print(script);
        }
        return 0;
    }

    /** The bash completion script of the whole command tree of {@code root}. */
    static String script(picocli.CommandLine root) {
        return AutoComplete.bash(root.getCommandName(), root);
    }
}
