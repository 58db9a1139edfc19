package io.tidemark.cli;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.util.ServiceLoader;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code tidemark} command line. */
@Command(
        name = "tidemark",
        mixinStandardHelpOptions = true,
        version = "tidemark 0.1.0",
        description = {
            "Event-driven snapshot, backup and replication for KVM/QEMU virtual machines.",
            "",
            "Start everything on one machine with embedded defaults:  tidemark run --qmp-dir DIR --policies DIR",
            "See it work end to end on a throwaway VM:                tidemark demo",
        },
        subcommands = {
            RunCommand.class,
            RestoreCommand.class,
            InstantRestoreCommand.class,
            FilesCommand.class,
            MountCommand.class,
            ListCommand.class,
            ShowCommand.class,
            StatusCommand.class,
            JobsCommand.class,
            BackupCommand.class,
            ReplicateCommand.class,
            PruneCommand.class,
            KeyCommand.class,
            VerifyCommand.class,
            GcCommand.class,
            PolicyCommand.class,
            HookCommand.class,
            RollbackCommand.class,
            DrCommand.class,
            DrillCommand.class,
            CommandLine.HelpCommand.class
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:success",
            "1:invalid input (a policy, the engine config, a flag); the message names the file, line and key",
            "2:permanent failure (missing restore point, corrupt object, refused credentials)",
            "3:transient failure (an endpoint did not answer); retrying later may succeed",
            "4:(status) an RPO is violated",
            "5:(status) partial results: a location could not be read; the others are shown",
            "70:internal error (a bug: please report it with the log)"
        })
public final class Main {

    public static final int EXIT_INVALID = 1;
    public static final int EXIT_PERMANENT = 2;
    public static final int EXIT_RETRIABLE = 3;
    public static final int EXIT_INTERNAL = 70;

    public static void main(String[] args) {
        // a bug must end the process (and run the shutdown hooks that stop QEMU, brokers...), not leave it hanging
        Thread.setDefaultUncaughtExceptionHandler((thread, e) -> {
            LoggerFactory.getLogger(Main.class)
                    .error("tidemark: internal error in thread {}; please report it", thread.getName(), e);
            System.exit(EXIT_INTERNAL);
        });
        System.exit(execute(args));
    }

    /** Runs the command line and returns the exit code (tests call this). */
    public static int execute(String... args) {
        CommandLine cli = commandLine();
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("tidemark: " + e.getMessage());
            if (e instanceof InvalidInputException) {
                return EXIT_INVALID;
            }
            if (e instanceof RetriableException) {
                return EXIT_RETRIABLE;
            }
            if (e instanceof PermanentException) {
                return EXIT_PERMANENT;
            }
            throw e;
        });
        return cli.execute(args);
    }

    /** The whole command tree: the built-in commands and those of every {@link MoreCommands} on the class path. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        // one duration syntax on every command: 30s, 5m, 1h30m (ISO-8601 such as PT5M still accepted)
        cli.registerConverter(java.time.Duration.class, Main::duration);
        for (MoreCommands more : ServiceLoader.load(MoreCommands.class)) {
            more.commands().forEach(cli::addSubcommand);
        }
        return cli;
    }

    /** The names of every command and subcommand, parents first ("dr", "dr failover", ...). */
    public static java.util.List<String> commandPaths() {
        java.util.List<String> paths = new java.util.ArrayList<>();
        addPaths(commandLine(), "", paths);
        return paths;
    }

    private static void addPaths(CommandLine command, String prefix, java.util.List<String> paths) {
        command.getSubcommands().forEach((name, sub) -> {
            if (!sub.getCommandName().equals(name) || name.equals("help")) {
                return; // an alias, or picocli's own help command
            }
            String path = prefix.isEmpty() ? name : prefix + " " + name;
            paths.add(path);
            addPaths(sub, path, paths);
        });
    }

    /** A duration as policies write it ({@code 30s}, {@code 5m}, {@code 1h30m}), or ISO-8601 ({@code PT5M}). */
    static java.time.Duration duration(String text) {
        String t = text.strip();
        if (t.regionMatches(true, 0, "PT", 0, 2)
                || t.regionMatches(true, 0, "P", 0, 1) && t.length() > 1 && Character.isDigit(t.charAt(1))) {
            return java.time.Duration.parse(t);
        }
        try {
            return io.tidemark.policies.PolicyParser.parseDuration(t);
        } catch (IllegalArgumentException e) {
            throw new picocli.CommandLine.TypeConversionException(
                    "'" + text + "' is not a duration: write it like 30s, 5m or 1h30m");
        }
    }
}
