package io.tidemark.cli;

import io.tidemark.recovery.RecoveryProgress;
import java.io.PrintStream;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Shows a recovery use case's progress on stderr: one {@link ProgressBar} per step label and a line
 * per long step; silent for scripts and {@code --json} (when not on a terminal).
 */
final class ProgressBars implements RecoveryProgress {

    private final PrintStream out;
    private final boolean enabled;
    private final Map<String, ProgressBar> bars = new ConcurrentHashMap<>();

    ProgressBars(PrintStream out, boolean enabled) {
        this.out = out;
        this.enabled = enabled;
    }

    /** Bars on stderr unless the output is JSON or stdout is not a terminal. */
    static ProgressBars onTerminal(boolean json) {
        return new ProgressBars(System.err, !json && System.console() != null);
    }

    @Override
    public void restored(String label, long done, long total) {
        bars.computeIfAbsent(label, l -> new ProgressBar(out, l, enabled)).update(done, total);
    }

    @Override
    public void starting(String what) {
        if (enabled) {
            out.println(what);
        }
    }
}
