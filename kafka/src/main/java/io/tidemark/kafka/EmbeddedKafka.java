package io.tidemark.kafka;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Writer;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;

/**
 * A single-node KRaft broker (broker and controller combined) inside this JVM: the embedded
 * default of {@code tidemark run} and the broker of the integration tests. Its data survives a
 * restart on the same directory. Uses Kafka's internal classes, so the Kafka version is pinned and
 * this class is covered by a test.
 */
public final class EmbeddedKafka implements AutoCloseable {

    private final KafkaRaftServer server;
    private final int brokerPort;

    private EmbeddedKafka(KafkaRaftServer server, int brokerPort) {
        this.server = server;
        this.brokerPort = brokerPort;
    }

    /**
     * Formats {@code dataDir} if needed and starts the broker; returns when it serves.
     *
     * @param brokerPort loopback port for clients, 0 for a free one
     * @param controllerPort loopback port for the controller, 0 for a free one
     */
    public static EmbeddedKafka start(Path dataDir, int brokerPort, int controllerPort) {
        try {
            int broker = brokerPort == 0 ? freePort() : brokerPort;
            int controller = controllerPort == 0 ? freePort() : controllerPort;
            Files.createDirectories(dataDir);
            Properties p = new Properties();
            p.put("process.roles", "broker,controller");
            p.put("node.id", "1");
            p.put("controller.quorum.voters", "1@127.0.0.1:" + controller);
            p.put("listeners", "PLAINTEXT://127.0.0.1:" + broker + ",CONTROLLER://127.0.0.1:" + controller);
            p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + broker);
            p.put("controller.listener.names", "CONTROLLER");
            p.put("inter.broker.listener.name", "PLAINTEXT");
            p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
            p.put("log.dirs", dataDir.resolve("log").toString());
            p.put("num.partitions", "1");
            p.put("auto.create.topics.enable", "true");
            p.put("offsets.topic.replication.factor", "1");
            p.put("offsets.topic.num.partitions", "1");
            p.put("transaction.state.log.replication.factor", "1");
            p.put("transaction.state.log.min.isr", "1");
            p.put("share.coordinator.state.topic.replication.factor", "1");
            p.put("share.coordinator.state.topic.min.isr", "1");
            p.put("group.initial.rebalance.delay.ms", "0");
            p.put("num.network.threads", "2");
            p.put("num.io.threads", "2");
            p.put("log.segment.bytes", "16777216");
            // the default (128 MiB) is allocated on heap at start-up
            p.put("log.cleaner.dedupe.buffer.size", "4194304");
            Path cfg = dataDir.resolve("server.properties");
            try (Writer w = Files.newBufferedWriter(cfg)) {
                p.store(w, "written by Tidemark's embedded broker");
            }
            int rc = StorageTool.execute(
                    new String[] {
                        "format", "-t", Uuid.randomUuid().toString(), "-c", cfg.toString(), "--ignore-formatted"
                    },
                    new PrintStream(OutputStream.nullOutputStream()));
            if (rc != 0) {
                throw new PermanentException("cannot format the embedded Kafka data directory " + dataDir + " (exit "
                        + rc + "); remove it or point --data elsewhere");
            }
            KafkaRaftServer server = new KafkaRaftServer(new KafkaConfig(p, false), Time.SYSTEM);
            server.startup();
            return new EmbeddedKafka(server, broker);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot start the embedded Kafka broker in " + dataDir + ": " + e.getMessage(), e);
        }
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + brokerPort;
    }

    @Override
    public void close() {
        server.shutdown();
        server.awaitShutdown();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
