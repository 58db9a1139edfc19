package io.tidemark.demo;

import io.tidemark.demo.bench.FiringLag;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "firing-lag",
        mixinStandardHelpOptions = true,
        description = {
            "Scheduler-to-job-topic lag of a large fleet and the failover of the firing scheduler.",
            "Starts 3 Kafka KRaft nodes, PostgreSQL and 2 schedulers (`tidemark run --roles scheduler`, Quartz"
                    + " JDBC cluster); the VMs are inventory entries spread over --hosts hosts, without QEMU and"
                    + " without workers. Measures each job's publish time minus its fire time: --baseline-vms,"
                    + " then --vms, then --vms with the scheduler that fired last killed (SIGKILL) halfway to"
                    + " the next firing, --failovers times.",
            "",
            "Example (docs/benchmarks.md):  tidemark bench firing-lag --vms 10000 --hosts 3",
        })
final class FiringLagCommand implements Callable<Integer> {

    @Option(
            names = "--baseline-vms",
            defaultValue = "100",
            description = "VMs of the baseline (default ${DEFAULT-VALUE})")
    int baselineVms;

    @Option(names = "--vms", defaultValue = "10000", description = "VMs (default ${DEFAULT-VALUE})")
    int vms;

    @Option(names = "--hosts", defaultValue = "3", description = "hosts the VMs are on (default ${DEFAULT-VALUE})")
    int hosts;

    @Option(
            names = "--interval",
            defaultValue = "30s",
            description = "the policy's schedule (default ${DEFAULT-VALUE})")
    String interval;

    @Option(
            names = "--firings",
            defaultValue = "3",
            description = "firings measured per phase (default ${DEFAULT-VALUE})")
    int firings;

    @Option(
            names = "--failovers",
            defaultValue = "3",
            description = "kills of the firing scheduler (default ${DEFAULT-VALUE})")
    int failovers;

    @Option(names = "--dir", description = "work directory; default a new one under /tmp")
    Path dir;

    @Override
    public Integer call() throws IOException {
        Path work = dir != null ? dir : Files.createTempDirectory(Path.of("/tmp"), "tm-firing-");
        System.err.println("firing-lag: working in " + work);
        FiringLag.Options options = new FiringLag.Options(
                work, baselineVms, vms, hosts, Targets.duration("--interval", interval), firings, failovers);
        System.out.println(Json.mapper()
                .writerWithDefaultPrettyPrinter()
                .writeValueAsString(new FiringLag(options, line -> System.err.println("firing-lag: " + line)).run()));
        return 0;
    }
}
