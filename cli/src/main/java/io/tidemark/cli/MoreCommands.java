package io.tidemark.cli;

import java.util.List;

/**
 * Subcommands that another module adds to {@code tidemark} when it is on the class path, found with
 * {@link java.util.ServiceLoader}. The demo module adds {@code demo} and {@code bench} this way, so
 * the CLI itself (and the distribution built from it) carries no test library.
 */
public interface MoreCommands {

    /** Picocli command objects (annotated with {@code @Command}), added after the built-in ones. */
    List<Object> commands();
}
