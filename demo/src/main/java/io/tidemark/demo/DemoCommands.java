package io.tidemark.demo;

import io.tidemark.cli.MoreCommands;
import java.util.List;

/** Adds {@code tidemark demo} and {@code tidemark bench} to the CLI when this module is on the class path. */
public final class DemoCommands implements MoreCommands {

    @Override
    public List<Object> commands() {
        return List.of(new DemoCommand(), new BenchCommand());
    }
}
