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
            "Examples:",
            "  tidemark run --qmp-dir DIR --policies DIR   # everything on one machine with embedded defaults",
            "  tidemark demo                               # see it work end to end on a throwaway VM",
            "  source <(tidemark completion)               # complete commands and options in bash",
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
            TierCommand.class,
            CompletionCommand.class,
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

    /**
     * Runs the command line and returns the exit code (tests call this). A failure prints {@code
     * tidemark: MESSAGE} on stderr; with {@code --json} also {@code {"error": MESSAGE, "exitCode":
     * N}} on stdout, as the one JSON document of the command.
     */
    public static int execute(String... args) {
        CommandLine cli = commandLine();
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            int code = exitCode(e);
            if (code == EXIT_INTERNAL) {
                if (wantsJson(parsed)) {
                    JsonOutput.error(
                            "internal error: " + e + "; please report it with the log",
                            code,
                            java.util.Optional.empty());
                }
                throw e;
            }
            cmd.getErr().println("tidemark: " + e.getMessage());
            if (wantsJson(parsed)) {
                JsonOutput.error(
                        e.getMessage(), code, e instanceof CommandFailure f ? f.detail() : java.util.Optional.empty());
            }
            return code;
        });
        CommandLine.IParameterExceptionHandler usage = cli.getParameterExceptionHandler();
        cli.setParameterExceptionHandler((e, given) -> {
            usage.handleParseException(e, given); // the message and the usage on stderr
            int code = EXIT_INVALID; // a bad flag is bad input, as the exit code list says (picocli would say 2)
            if (java.util.Arrays.asList(given).contains("--json")) {
                JsonOutput.error(e.getMessage(), code, java.util.Optional.empty());
            }
            return code;
        });
        return cli.execute(args);
    }

    /** The exit code of a failure: {@link #EXIT_INTERNAL} for a bug. */
    static int exitCode(Exception e) {
        if (e instanceof CommandFailure f) {
            return f.exitCode();
        }
        if (e instanceof InvalidInputException) {
            return EXIT_INVALID;
        }
        if (e instanceof RetriableException) {
            return EXIT_RETRIABLE;
        }
        if (e instanceof PermanentException) {
            return EXIT_PERMANENT;
        }
        return EXIT_INTERNAL;
    }

    /** Whether the command that ran (the deepest subcommand) was given {@code --json}. */
    private static boolean wantsJson(CommandLine.ParseResult parsed) {
        CommandLine.ParseResult p = parsed;
        while (p.hasSubcommand()) {
            p = p.subcommand();
        }
        return p.hasMatchedOption("--json") && Boolean.TRUE.equals(p.matchedOptionValue("--json", false));
    }

    /** The whole command tree: the built-in commands and those of every {@link MoreCommands} on the class path. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        // one duration syntax on every command: 30s, 5m, 1h30m (ISO-8601 such as PT5M still accepted)
        cli.registerConverter(java.time.Duration.class, Main::duration);
        for (MoreCommands more : ServiceLoader.load(MoreCommands.class)) {
            more.commands().forEach(cli::addSubcommand);
        }
        cli.setUsageHelpWidth(USAGE_WIDTH);
        paragraphs(cli);
        return cli;
    }

    /** The width of {@code --help}: every example line of every command fits (CommandTreeTest checks). */
    static final int USAGE_WIDTH = 100;

    /**
     * Descriptions and footers are written as lines of source; picocli would wrap each line again on
     * its own, breaking sentences mid-way. Consecutive lines of prose are joined into paragraphs that
     * picocli wraps once; the first line (the summary the command list shows), blank lines, headings
     * (ending in ':'), "Example..." lines and indented lines (examples, lists) stay as written.
     */
    private static void paragraphs(CommandLine command) {
        CommandLine.Model.UsageMessageSpec usage = command.getCommandSpec().usageMessage();
        usage.description(paragraphs(usage.description(), true));
        usage.footer(paragraphs(usage.footer(), false));
        command.getSubcommands().forEach((name, sub) -> {
            if (sub.getCommandName().equals(name)) {
                paragraphs(sub);
            }
        });
    }

    static String[] paragraphs(String[] lines, boolean firstIsSummary) {
        java.util.List<String> out = new java.util.ArrayList<>();
        boolean prose = false; // whether the last line out is prose another may join
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i];
            boolean asWritten = line.isBlank()
                    || Character.isWhitespace(line.charAt(0))
                    || line.stripTrailing().endsWith(":")
                    || line.startsWith("Example")
                    || i == 0 && firstIsSummary;
            if (!asWritten && prose) {
                out.set(out.size() - 1, out.get(out.size() - 1).stripTrailing() + " " + line.strip());
            } else {
                out.add(line);
            }
            prose = !asWritten;
        }
        return out.toArray(String[]::new);
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
