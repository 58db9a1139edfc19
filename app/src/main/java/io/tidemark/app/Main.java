package io.tidemark.app;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
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
            ListCommand.class,
            StatusCommand.class,
            ReplicateCommand.class,
            PruneCommand.class,
            KeyCommand.class,
            VerifyCommand.class,
            GcCommand.class,
            PolicyCommand.class,
            HookCommand.class,
            RollbackCommand.class,
            DemoCommand.class,
            DrCommand.class,
            DrillCommand.class,
            BenchCommand.class,
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

    static final int EXIT_INVALID = 1;
    static final int EXIT_PERMANENT = 2;
    static final int EXIT_RETRIABLE = 3;
    static final int EXIT_INTERNAL = 70;

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
        CommandLine cli = new CommandLine(new Main());
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
}
