package io.tidemark.cli;

import io.tidemark.core.Human;
import io.tidemark.repository.Restorer;
import java.io.PrintStream;

/** A one-line progress bar on stderr for long CLI work; silent when disabled (scripts, --json). */
final class ProgressBar implements Restorer.Progress {

    private final PrintStream out;
    private final String label;
    private final boolean enabled;
    private final long start = System.nanoTime();
    private long lastDraw;

    ProgressBar(PrintStream out, String label, boolean enabled) {
        this.out = out;
        this.label = label;
        this.enabled = enabled;
    }

    @Override
    public synchronized void update(long done, long total) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (done < total && now - lastDraw < 100_000_000L) {
            return;
        }
        lastDraw = now;
        int width = 30;
        int filled = total == 0 ? width : (int) (width * done / total);
        double secs = Math.max(1e-3, (now - start) / 1e9);
        out.printf(
                "\r%s [%s%s] %3d%% %s/%s %.0f MiB/s",
                label,
                "#".repeat(filled),
                " ".repeat(width - filled),
                total == 0 ? 100 : done * 100 / total,
                Human.bytes(done),
                Human.bytes(total),
                done / secs / (1 << 20));
        if (done >= total) {
            out.println();
        }
    }
}
