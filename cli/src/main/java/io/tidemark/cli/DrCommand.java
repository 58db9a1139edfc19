package io.tidemark.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

@Command(
        name = "dr",
        mixinStandardHelpOptions = true,
        description = {
            "Fail a plan's VMs over to the DR site, and back home again.",
            "Disaster recovery: bring a plan's VMs up at a DR site from replicated restore points",
            "(failover), and bring the changes made there home again (failback).",
            "",
            "Example:  tidemark dr failover --config /etc/tidemark/engine.yaml --plan dr-east.yaml --dry-run",
            "",
            "Runbooks: docs/runbooks/dr-failover.md and docs/runbooks/dr-failback.md",
        },
        subcommands = {FailoverCommand.class, FailbackCommand.class})
final class DrCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    /** Without a subcommand: the usage, and exit 1. */
    @Override
    public Integer call() {
        spec.commandLine().usage(System.err);
        return Main.EXIT_INVALID;
    }
}
