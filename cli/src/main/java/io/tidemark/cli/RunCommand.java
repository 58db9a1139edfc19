package io.tidemark.cli;

import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "run",
        description = {
            "Run the engine (scheduler, worker and replicator) until stopped.",
            "Run the scheduler, the worker of this host and the replicator until stopped: all in one process on",
            "one host, or only some of them (--roles) on each machine of a fleet.",
            "Without --kafka an embedded single-node Kafka broker is started under --data.",
            "Every <vm>.qmp socket in --qmp-dir is a VM of this host; policies select VMs by name.",
            "",
            "Examples:",
            "  tidemark run --qmp-dir /run/tidemark/qmp --policies /etc/tidemark/policies",
            "  tidemark run --config /etc/tidemark/tidemark.yaml --roles worker          # a hypervisor host",
            "  tidemark run --config /etc/tidemark/tidemark.yaml --roles scheduler,replicator",
            "  tidemark run --config /etc/tidemark/tidemark.yaml --json 2>>/var/log/tidemark.jsonl"
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

    @Option(
            names = "--roles",
            split = ",",
            defaultValue = "${env:TIDEMARK_ROLES}",
            description = "what this process runs: scheduler, worker, replicator (comma-separated) or all;"
                    + " overrides roles: of the config (default: every role; env TIDEMARK_ROLES)")
    java.util.List<String> roles;

    @Option(names = "--qmp-dir", description = "directory of <vm>.qmp QMP sockets (default: /run/tidemark/qmp)")
    Path qmpDir;

    @Option(names = "--policies", description = "directory of policy YAML files (default: ./policies)")
    Path policies;

    @Option(
            names = "--json",
            description = "log as JSON lines on stderr (one object per event) for a log shipper; stdout stays empty")
    boolean json;

    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(RunCommand.class);

    @Override
    public Integer call() throws InterruptedException {
        if (json) {
            JsonLogs.useJsonLines();
        }
        EngineConfig.Builder given = (config != null ? EngineConfig.load(config) : EngineConfig.empty()).toBuilder();
        if (host != null) {
            given.host(host);
        }
        if (data != null) {
            given.data(data);
        }
        if (kafka != null) {
            given.kafka(kafka);
        }
        if (qmpDir != null) {
            given.qmpDir(qmpDir);
        }
        if (policies != null) {
            given.policies(policies);
        }
        if (roles != null && !roles.isEmpty()) {
            given.roles(roles);
        }
        EngineConfig c = given.build().withDefaults(RunCommand::defaultHost);
        if (c.hooks() == null && System.getenv(EngineConfig.HooksConfig.DEFAULT_SECRET_ENV) != null) {
            c = c.toBuilder().hooks(EngineConfig.HooksConfig.defaults()).build();
        }
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        // the JVM halts once every shutdown hook has returned: the hook waits until the engine has drained
        Thread hook = new Thread(
                () -> {
                    stop.countDown();
                    awaitQuietly(closed, SHUTDOWN_GRACE);
                },
                "shutdown");
        Engine engine = Engine.start(c, CaptureHooks.NONE, Clock.systemUTC());
        try {
            Runtime.getRuntime().addShutdownHook(hook);
            say("tidemark: running on host " + c.host() + "; stop with Ctrl-C");
            stop.await();
            say("tidemark: stopping (running jobs get a bounded time to finish)");
            engine.close();
            say("tidemark: stopped");
        } finally {
            engine.close(); // idempotent: closes what the try did not
            closed.countDown();
        }
        return 0;
    }

    /** A word to the operator: a line on stderr, or with --json a log event like every other. */
    private void say(String message) {
        if (json) {
            LOG.info(message);
        } else {
            System.err.println(message);
        }
    }

    /**
     * How long a SIGTERM waits for the engine to drain before the JVM halts anyway: longer than the
     * roles' own drain bounds, so they, not this, decide.
     */
    static final Duration SHUTDOWN_GRACE = Duration.ofSeconds(90);

    private static void awaitQuietly(CountDownLatch latch, Duration timeout) {
        try {
            latch.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
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
