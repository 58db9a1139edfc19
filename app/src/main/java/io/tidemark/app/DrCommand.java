package io.tidemark.app;

import picocli.CommandLine.Command;

@Command(
        name = "dr",
        description = {
            "Disaster recovery: bring a plan's VMs up at a DR site from replicated restore points",
            "(failover), and bring the changes made there home again (failback).",
            "",
            "Runbooks: docs/runbooks/dr-failover.md and docs/runbooks/dr-failback.md",
        },
        subcommands = {FailoverCommand.class, FailbackCommand.class})
final class DrCommand {}
