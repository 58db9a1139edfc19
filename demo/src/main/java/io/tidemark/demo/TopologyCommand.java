package io.tidemark.demo;

import io.tidemark.cli.Main;
import io.tidemark.demo.bench.Topology;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "topology",
        mixinStandardHelpOptions = true,
        description = {
            "A fleet on this machine, every part a process of its own, under SIGKILL (issue 12).",
            "Starts 3 Kafka KRaft nodes, PostgreSQL, 2 schedulers (Quartz JDBC cluster), --hosts worker"
                    + " hosts (each `tidemark run --roles worker` with its own QMP directory and --vms QEMU VMs"
                    + " under TCG whose disks it writes with known patterns), 2 replicators and an S3 target"
                    + " (S3Proxy, or Ceph RGW with --rgw). Then --kills times: SIGKILL of the scheduler that"
                    + " fired last, a worker host, a replicator or a Kafka node, or a PostgreSQL restart, each"
                    + " process started again on its data; one VM migrates between worker hosts halfway.",
            "At the end it checks: no firing lost or doubled, no job lost, no half-visible point, every"
                    + " point on the target and restored from there bit-identical to the disk at its snapshot"
                    + " moment; it prints each VM's firing lag after each kill and whether the migrated VM"
                    + " kept its chain.",
            "Exit 0 if every check passed, 2 otherwise. Needs qemu-system-x86, qemu-utils, postgresql"
                    + " (and ceph, radosgw for --rgw).",
            "",
            "Example (the long run of docs/benchmarks.md):  tidemark bench topology --kills 30 --hosts 3",
        })
final class TopologyCommand implements Callable<Integer> {

    @Option(names = "--hosts", defaultValue = "3", description = "worker hosts (default ${DEFAULT-VALUE})")
    int hosts;

    @Option(names = "--vms", defaultValue = "2", description = "QEMU VMs per worker host (default ${DEFAULT-VALUE})")
    int vms;

    @Option(names = "--disk-size", defaultValue = "8MiB", description = "each VM's disk (default ${DEFAULT-VALUE})")
    String diskSize;

    @Option(
            names = "--interval",
            defaultValue = "10s",
            description = "the policy's schedule (default ${DEFAULT-VALUE})")
    String interval;

    @Option(names = "--kills", defaultValue = "20", description = "kills (default ${DEFAULT-VALUE})")
    int kills;

    @Option(
            names = "--kinds",
            defaultValue = "scheduler,worker,replicator,broker,postgres",
            split = ",",
            description = "kinds of kill, taken in turn (default ${DEFAULT-VALUE})")
    String[] kinds;

    @Option(
            names = "--down-for",
            defaultValue = "5s",
            description = "a killed process stays down up to this long (default ${DEFAULT-VALUE})")
    String downFor;

    @Option(names = "--settle", defaultValue = "20s", description = "pause between kills (default ${DEFAULT-VALUE})")
    String settle;

    @Option(names = "--no-migrate", description = "no VM migrates between worker hosts")
    boolean noMigrate;

    @Option(names = "--rgw", description = "Ceph RGW as target (deploy/ceph/start-ceph.sh) instead of S3Proxy")
    boolean rgw;

    @Option(names = "--replication-bench", description = "after the checks, time replication with 1 and 2 replicators")
    boolean replicationBench;

    @Option(names = "--seed", defaultValue = "1", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dir", description = "work directory, short (Unix sockets); default a new one under /tmp")
    Path dir;

    @Option(names = "--json", description = "print the figures as JSON")
    boolean json;

    @Override
    public Integer call() throws IOException {
        Path work = dir != null ? dir : Files.createTempDirectory(Path.of("/tmp"), "tm-topo-");
        System.err.println("topology: working in " + work + " (process logs in " + work.resolve("logs") + ")");
        Topology.Options options = new Topology.Options(
                work,
                hosts,
                vms,
                BenchCommand.size(diskSize),
                Targets.duration("--interval", interval),
                kills,
                Arrays.asList(kinds),
                Targets.duration("--down-for", downFor),
                Targets.duration("--settle", settle),
                !noMigrate,
                rgw,
                replicationBench,
                seed);
        Topology.Result r = new Topology(options, line -> System.err.println("topology: " + line)).run();
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(r.figures()));
        } else {
            SoakCommand.print(r.figures(), System.out);
        }
        return r.failures().isEmpty() ? 0 : Main.EXIT_PERMANENT;
    }
}
