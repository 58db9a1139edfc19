package io.tidemark.demo;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.cli.Main;
import io.tidemark.demo.bench.Soak;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "soak",
        mixinStandardHelpOptions = true,
        description = {
            "Operate the engine like production and check what it left behind (the day-two soak).",
            "Starts QEMU VMs (TCG) whose disks it writes with known patterns, S3Proxy as target behind a"
                    + " fault proxy, and `tidemark run` as a child process, then: SIGTERM/SIGKILL at random"
                    + " moments (capture, export, just after a commit, replication, gc), the embedded broker"
                    + " killed, the target down longer than its retry deadline, a VM SIGSTOPped, a QMP socket"
                    + " moved away and back, a manifest truncated.",
            "At the end it checks that every firing produced one restore point or a JobFailed with a reason,"
                    + " no point is half-visible, every point is on the target and restores bit-identically to"
                    + " the disk at its snapshot moment (the soak's own model, checked with the VM paused),"
                    + " every missed RPO raised a violation, and nothing is left behind.",
            "Exit 0 if every check passed, 2 otherwise. Needs qemu-system-x86, qemu-utils.",
            "",
            "Example (the long run of docs/benchmarks.md):  tidemark bench soak --kills 200",
        })
final class SoakCommand implements Callable<Integer> {

    @Option(names = "--kills", defaultValue = "200", description = "engine kills/restarts (default ${DEFAULT-VALUE})")
    int kills;

    @Option(names = "--min-duration", defaultValue = "0s", description = "run at least this long, e.g. 30m")
    String minDuration;

    @Option(
            names = "--vms",
            defaultValue = "3",
            description = "VMs (default ${DEFAULT-VALUE}; the first has two disks)")
    int vms;

    @Option(names = "--disk-size", defaultValue = "16MiB", description = "each disk (default ${DEFAULT-VALUE})")
    String diskSize;

    @Option(
            names = "--interval",
            defaultValue = "10s",
            description = "the policy's schedule (default ${DEFAULT-VALUE})")
    String interval;

    @Option(names = "--rpo", defaultValue = "40s", description = "the policy's RPO (default ${DEFAULT-VALUE})")
    String rpo;

    @Option(
            names = "--retry-deadline",
            defaultValue = "10s",
            description = "the target's retry deadline; the outage lasts 3x this plus an interval (default"
                    + " ${DEFAULT-VALUE})")
    String retryDeadline;

    @Option(
            names = "--aim-wait",
            defaultValue = "50s",
            description = "how long a kill waits for its aimed moment (capture, export, ...); random kills fall"
                    + " in its first half (default ${DEFAULT-VALUE})")
    String aimWait;

    @Option(names = "--seed", defaultValue = "1", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dir", description = "work directory, short (Unix sockets); default a new one under /tmp")
    Path dir;

    @Option(names = "--json", description = "print the figures as JSON")
    boolean json;

    @Override
    public Integer call() throws IOException {
        Path work = dir != null ? dir : Files.createTempDirectory(Path.of("/tmp"), "tm-soak-");
        System.err.println("soak: working in " + work + " (engine logs in " + work.resolve("logs") + ")");
        Soak.Options options = new Soak.Options(
                work,
                kills,
                Targets.duration("--min-duration", minDuration),
                vms,
                BenchCommand.size(diskSize),
                Targets.duration("--interval", interval),
                Targets.duration("--rpo", rpo),
                Targets.duration("--retry-deadline", retryDeadline),
                seed,
                Targets.duration("--aim-wait", aimWait),
                true);
        Soak.Result r = new Soak(options, line -> System.err.println("soak: " + line)).run();
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(r.figures()));
        } else {
            print(r.figures(), System.out);
        }
        return r.failures().isEmpty() ? 0 : Main.EXIT_PERMANENT;
    }

    /** The figures, one line each; objects flattened as {@code a.b: value}. */
    static void print(JsonNode figures, PrintStream out) {
        print("", figures, out);
    }

    private static void print(String prefix, JsonNode n, PrintStream out) {
        if (n.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                print(prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(), e.getValue(), out);
            }
        } else if (n.isArray()) {
            out.printf(Locale.ROOT, "%s: %d%n", prefix, n.size());
            n.forEach(x -> out.printf(Locale.ROOT, "  - %s%n", x.asText()));
        } else if (n.isDouble()) {
            out.printf(Locale.ROOT, "%s: %.2f%n", prefix, n.asDouble());
        } else {
            out.printf(Locale.ROOT, "%s: %s%n", prefix, n.asText());
        }
    }
}
