package io.tidemark.app;

import io.tidemark.workers.CaptureHooks;
import java.nio.file.Path;
import java.time.Clock;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "run",
        description = {
            "Run the scheduler, the worker of this host and the replicator in one process until stopped.",
            "Without --kafka an embedded single-node Kafka broker is started under --data.",
            "Every <vm>.qmp socket in --qmp-dir is a VM of this host; policies select VMs by name."
        })
final class RunCommand implements Callable<Integer> {

    @Option(names = "--config", description = "engine config YAML (targets, host, paths); flags override it")
    Path config;

    @Option(names = "--host", description = "this host's name (default: the machine's host name)")
    String host;

    @Option(
            names = "--data",
            description = "data directory: primary repository, embedded broker (default: ./tidemark-data)")
    Path data;

    @Option(names = "--kafka", description = "Kafka bootstrap servers; empty or absent = embedded broker")
    String kafka;

    @Option(names = "--qmp-dir", description = "directory of <vm>.qmp QMP sockets (default: /run/tidemark/qmp)")
    Path qmpDir;

    @Option(names = "--policies", description = "directory of policy YAML files (default: ./policies)")
    Path policies;

    @Override
    public Integer call() throws InterruptedException {
        EngineConfig base = config != null ? EngineConfig.load(config) : EngineConfig.empty();
        EngineConfig c = base.with(host, data, kafka, qmpDir, policies);
        c = new EngineConfig(
                c.host() != null ? c.host() : defaultHost(),
                c.data() != null ? c.data() : Path.of("tidemark-data"),
                c.kafka(),
                c.qmpDir() != null ? c.qmpDir() : Path.of("/run/tidemark/qmp"),
                c.policies() != null ? c.policies() : Path.of("policies"),
                c.targets(),
                c.metrics() != null ? c.metrics() : "127.0.0.1:9464",
                c.hooks() != null || System.getenv(EngineConfig.HooksConfig.DEFAULT_SECRET_ENV) == null
                        ? c.hooks()
                        : EngineConfig.HooksConfig.defaults(),
                base.hypervisor(),
                c.encryption(),
                c.maxConcurrentJobs(),
                c.jobDeadline());
        CountDownLatch stop = new CountDownLatch(1);
        try (Engine engine = Engine.start(c, CaptureHooks.NONE, Clock.systemUTC())) {
            Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown, "shutdown"));
            System.err.println("tidemark: running on host " + c.host() + "; stop with Ctrl-C");
            stop.await();
        }
        return 0;
    }

    static String defaultHost() {
        String h = System.getenv("HOSTNAME");
        if (h != null && !h.isBlank()) {
            return h;
        }
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "localhost";
        }
    }
}
