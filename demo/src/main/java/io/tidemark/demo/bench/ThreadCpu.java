package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.concurrent.DaemonThreads;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Where a phase's CPU went, by thread: samples {@code /proc/self/task/<tid>/stat} every 200 ms and
 * sums each thread's user + system ticks over the phase, grouped by thread name without its number
 * ({@code chunk-store}, {@code nbd-reader sda}, {@code C2 CompilerThre}, {@code VM Thread}, ...).
 * Threads that end during the phase (an NBD client's reader) are counted up to their last sample.
 * {@code children} is the CPU of child processes reaped during the phase ({@code qemu-nbd},
 * {@code qemu-img}). No {@code /proc}: no figures.
 */
final class ThreadCpu implements AutoCloseable {

    private static final Path TASKS = Path.of("/proc/self/task");

    private final Map<String, long[]> seen = new HashMap<>(); // tid -> {first, last}
    private final Map<String, String> names = new HashMap<>();
    private final long[] children0 = children();
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("thread-cpu-sampler"));

    ThreadCpu() {
        timer.scheduleAtFixedRate(this::sample, 0, 200, TimeUnit.MILLISECONDS);
    }

    private synchronized void sample() {
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
            for (Path t : tasks) {
                String tid = t.getFileName().toString();
                try {
                    String stat = Files.readString(t.resolve("stat"));
                    String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
                    names.put(tid, name.replaceAll("[-#]?\\d+$", "").trim());
                    seen.computeIfAbsent(tid, k -> new long[] {ticks, ticks})[1] = ticks;
                } catch (IOException | RuntimeException e) {
                    // the thread ended between the listing and the read: its last sample stands
                }
            }
        } catch (IOException e) {
            // no /proc: no figures
        }
    }

    /** Stops sampling and writes CPU-seconds per thread group (and children) into {@code out}. */
    void report(ObjectNode out) {
        timer.shutdownNow();
        sample();
        Map<String, Long> groups = new TreeMap<>();
        synchronized (this) {
            seen.forEach((tid, v) -> groups.merge(names.get(tid), v[1] - v[0], Long::sum));
        }
        groups.forEach((name, ticks) -> {
            if (ticks > 0) {
                out.put(name, ticks / 100.0);
            }
        });
        long[] c = children();
        out.put("children (qemu-nbd, qemu-img)", (c[0] + c[1] - children0[0] - children0[1]) / 100.0);
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }

    private static long[] children() {
        try {
            String stat = Files.readString(Path.of("/proc/self/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return new long[] {Long.parseLong(f[13]), Long.parseLong(f[14])};
        } catch (IOException | RuntimeException e) {
            return new long[] {0, 0};
        }
    }
}
