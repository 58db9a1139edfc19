package io.tidemark.kafka;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Reader;
import java.io.Writer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-node KRaft broker (broker and controller combined) inside this JVM: the embedded
 * default of {@code tidemark run} and the broker of the integration tests. Uses Kafka's internal
 * classes, so the Kafka version is pinned and this class is covered by a test.
 *
 * <p>Restart is the normal case: the data directory is formatted once, with a new cluster id, and
 * every later start reopens it as it is (same cluster id, topics, committed offsets), whether the
 * previous broker was closed or killed. The ports are kept in {@code endpoint.properties} of the
 * data directory and reused when free; when one is taken a free one is chosen (clients in this
 * process are told by {@link #bootstrapServers()}; the single-node quorum takes its voter's
 * address from the configuration, so a changed controller port is accepted).
 */
public final class EmbeddedKafka implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(EmbeddedKafka.class);
    static final String ENDPOINT_FILE = "endpoint.properties";

    private final KafkaRaftServer server;
    private final int brokerPort;
    private final String clusterId;

    private EmbeddedKafka(KafkaRaftServer server, int brokerPort, String clusterId) {
        this.server = server;
        this.brokerPort = brokerPort;
        this.clusterId = clusterId;
    }

    /**
     * Formats {@code dataDir} if it never was, otherwise reopens it, and starts the broker; returns
     * when it serves.
     *
     * @param brokerPort loopback port for clients; 0 for the one of the last start if free, else a free one
     * @param controllerPort loopback port for the controller; 0 as for {@code brokerPort}
     * @throws PermanentException if the directory cannot be formatted or read
     */
    public static EmbeddedKafka start(Path dataDir, int brokerPort, int controllerPort) {
        try {
            Files.createDirectories(dataDir);
            Path logDir = dataDir.resolve("log");
            Properties endpoint = readProperties(dataDir.resolve(ENDPOINT_FILE));
            int broker = brokerPort != 0 ? brokerPort : reuseOrFree(endpoint, "broker.port", -1);
            int controller = controllerPort != 0 ? controllerPort : reuseOrFree(endpoint, "controller.port", broker);
            Properties p = new Properties();
            p.put("process.roles", "broker,controller");
            p.put("node.id", "1");
            p.put("controller.quorum.voters", "1@127.0.0.1:" + controller);
            p.put("listeners", "PLAINTEXT://127.0.0.1:" + broker + ",CONTROLLER://127.0.0.1:" + controller);
            p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + broker);
            p.put("controller.listener.names", "CONTROLLER");
            p.put("inter.broker.listener.name", "PLAINTEXT");
            p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
            p.put("log.dirs", logDir.toString());
            p.put("num.partitions", "1");
            p.put("auto.create.topics.enable", "true");
            p.put("offsets.topic.replication.factor", "1");
            p.put("offsets.topic.num.partitions", "1");
            p.put("transaction.state.log.replication.factor", "1");
            p.put("transaction.state.log.min.isr", "1");
            p.put("share.coordinator.state.topic.replication.factor", "1");
            p.put("share.coordinator.state.topic.min.isr", "1");
            p.put("group.initial.rebalance.delay.ms", "0");
            // a killed engine's members hold their partitions until their session expires (45 s by
            // default): after a restart on the same data the new members wait that long for them
            p.put("group.consumer.min.session.timeout.ms", "15000");
            p.put("group.consumer.session.timeout.ms", "15000");
            p.put("num.network.threads", "2");
            p.put("num.io.threads", "2");
            p.put("log.segment.bytes", "16777216");
            // the default (128 MiB) is allocated on heap at start-up
            p.put("log.cleaner.dedupe.buffer.size", "4194304");
            Path cfg = dataDir.resolve("server.properties");
            writeAtomically(cfg, p, "written by Tidemark's embedded broker at each start");
            // the cluster id is chosen once, when the directory is formatted; later starts keep it
            Optional<String> formatted = clusterIdIn(logDir);
            String clusterId = formatted.orElseGet(() -> Uuid.randomUuid().toString());
            int rc = StorageTool.execute(
                    new String[] {"format", "-t", clusterId, "-c", cfg.toString(), "--ignore-formatted"},
                    new PrintStream(OutputStream.nullOutputStream()));
            if (rc != 0) {
                throw new PermanentException("cannot format the embedded Kafka data directory " + dataDir + " (exit "
                        + rc + "); remove it or point --data elsewhere");
            }
            if (formatted.isEmpty()) {
                log.info("embedded Kafka: formatted {} as cluster {}", logDir, clusterId);
            }
            Properties ports = new Properties();
            ports.put("broker.port", String.valueOf(broker));
            ports.put("controller.port", String.valueOf(controller));
            writeAtomically(
                    dataDir.resolve(ENDPOINT_FILE),
                    ports,
                    "ports of the embedded broker, reused at the next start when free");
            KafkaRaftServer server = new KafkaRaftServer(new KafkaConfig(p, false), Time.SYSTEM);
            server.startup();
            return new EmbeddedKafka(server, broker, clusterId);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot start the embedded Kafka broker in " + dataDir + ": " + e.getMessage(), e);
        }
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + brokerPort;
    }

    /** The id the data directory was formatted with: the same at every start on that directory. */
    public String clusterId() {
        return clusterId;
    }

    @Override
    public void close() {
        server.shutdown();
        server.awaitShutdown();
    }

    /** The cluster id of a formatted log directory, if it was formatted. */
    static Optional<String> clusterIdIn(Path logDir) throws IOException {
        Path meta = logDir.resolve("meta.properties");
        if (!Files.isRegularFile(meta)) {
            return Optional.empty();
        }
        String id = readProperties(meta).getProperty("cluster.id");
        if (id == null || id.isBlank()) {
            throw new PermanentException(meta + " names no cluster.id; the embedded broker's data is damaged:"
                    + " restore it or move it away (its topics and offsets are then lost)");
        }
        return Optional.of(id.trim());
    }

    private static Properties readProperties(Path file) throws IOException {
        Properties p = new Properties();
        if (Files.isRegularFile(file)) {
            try (Reader r = Files.newBufferedReader(file)) {
                p.load(r);
            }
        }
        return p;
    }

    /** Writes a temporary file and renames it, so a kill never leaves half a file. */
    private static void writeAtomically(Path file, Properties p, String comment) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmp)) {
            p.store(w, comment);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static int reuseOrFree(Properties endpoint, String name, int taken) throws IOException {
        String last = endpoint.getProperty(name);
        if (last != null) {
            try {
                int port = Integer.parseInt(last.trim());
                if (port != taken && isFree(port)) {
                    return port;
                }
                log.warn("embedded Kafka: {} {} of the last start is taken, choosing another", name, port);
            } catch (NumberFormatException e) {
                log.warn("embedded Kafka: ignoring {}={} in {}", name, last, ENDPOINT_FILE);
            }
        }
        int port;
        do {
            port = freePort();
        } while (port == taken);
        return port;
    }

    private static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort() == port;
        } catch (IOException e) {
            return false;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
