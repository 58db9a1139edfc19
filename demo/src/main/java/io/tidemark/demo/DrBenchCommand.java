package io.tidemark.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.files.FileTrees;
import io.tidemark.demo.bench.DrRto;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "dr",
        mixinStandardHelpOptions = true,
        description = {
            "DR failover RTO per VM from the operator's command, its JVM included (issue 14).",
            "Defines --vms tiny-guest VMs on an isolated source libvirtd, backs them up through libvirt (each"
                    + " point carries the domain's definition) under a policy promising --rto, then runs"
                    + " `tidemark dr failover --json` as a process of its own onto a second isolated libvirtd and"
                    + " times each VM from the process's start until its guest agent answers. Prints per VM the"
                    + " RTO, its parts (JVM start; plan, config, repository and points; restore and define;"
                    + " until running; guest boot) and the ratio to the policy's RTO, and the load average.",
            "Needs root, libvirt-daemon-system, qemu-system-x86, qemu-utils and the tiny guest"
                    + " (deploy/guest/build-tiny-guest.sh, built on first use).",
            "",
            "Example (docs/benchmarks.md):  tidemark bench dr --vms 3",
        })
final class DrBenchCommand implements Callable<Integer> {

    @Option(
            names = "--vms",
            defaultValue = "3",
            description = "VMs failed over at once, 1 to 3 (default ${DEFAULT-VALUE})")
    int vms;

    @Option(
            names = "--disk-size",
            defaultValue = "64MiB",
            description = "each VM's ext4 data disk (default ${DEFAULT-VALUE})")
    String diskSize;

    @Option(
            names = "--memory",
            defaultValue = "256",
            description = "each guest's memory in MiB (default ${DEFAULT-VALUE})")
    int memoryMiB;

    @Option(
            names = "--rto",
            defaultValue = "5m",
            description = "the RTO the VMs' policy promises (default ${DEFAULT-VALUE})")
    String rto;

    @Option(names = "--dir", description = "work directory, short (Unix sockets); default a new one under /tmp")
    Path dir;

    @Option(names = "--keep", description = "keep the work directory (repository, plan, DR disks, logs)")
    boolean keep;

    @Option(names = "--json", description = "print the figures as JSON")
    boolean json;

    @Override
    public Integer call() throws IOException {
        if (vms < 1 || vms > 3) {
            throw new picocli.CommandLine.ParameterException(
                    new picocli.CommandLine(this), "--vms must be 1, 2 or 3, got " + vms);
        }
        Path work = dir != null ? dir : Files.createTempDirectory(Path.of("/tmp"), "tm-dr-");
        ObjectNode r;
        try {
            r = new DrRto(
                            new DrRto.Options(
                                    work, vms, BenchCommand.size(diskSize), Targets.duration("--rto", rto), memoryMiB),
                            line -> System.err.println("bench dr: " + line))
                    .run();
        } finally {
            if (!keep) {
                FileTrees.delete(work);
            }
        }
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(r));
        } else {
            print(r, System.out);
        }
        return 0;
    }

    static void print(JsonNode r, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "%d VM(s), policy RTO %.0f s; load before %s, after %s%n",
                r.path("vms").asInt(),
                r.path("rtoLimitSeconds").asDouble(),
                r.path("loadBefore").asText(),
                r.path("loadAfter").asText());
        out.printf(
                Locale.ROOT,
                "JVM start (spawn -> command's code) %.2f s; plan, config, repository, points %.2f s%n",
                r.path("jvmStartSeconds").asDouble(),
                r.path("configRepositoryPointsSeconds").asDouble());
        out.printf(
                "%-8s %-5s %9s %10s %10s %8s %9s %13s%n",
                "VM", "ACCEL", "RTO", "JVM+CONF", "RESTORE+DEF", "BOOT", "/ POLICY", "FAILOVER RTO");
        for (JsonNode v : r.path("perVm")) {
            out.printf(
                    Locale.ROOT,
                    "%-8s %-5s %8.1fs %9.1fs %10.1fs %7.1fs %8.3fx %6.1fs/%.1fs%n",
                    v.path("vm").asText(),
                    v.path("accelerator").asText(),
                    v.path("rtoSeconds").asDouble(),
                    v.path("jvmAndConfigSeconds").asDouble(),
                    v.path("restoreAndDefineSeconds").asDouble(),
                    v.path("bootSeconds").asDouble(),
                    v.path("ratioToPolicyRto").asDouble(),
                    v.path("failoverRtoSeconds").asDouble(),
                    v.path("failoverRtoFromCommandStartSeconds").asDouble());
        }
        out.println("RTO = JVM+CONF + RESTORE+DEF + BOOT (domain started until its guest agent answers). FAILOVER RTO:"
                + " what `dr failover --json` reports, rtoSeconds / rtoFromCommandStartSeconds (until libvirt reports"
                + " the domain running, after every VM of its group was started)");
    }
}
