package io.tidemark.testkit.kafka;

import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.utils.Time;

/**
 * One node (broker and controller) of a {@link LocalKafkaCluster}, in a JVM of its own so a test can
 * kill it: {@code args}: data directory, cluster id, node id, broker port, controller port, the
 * quorum voters ({@code 1@127.0.0.1:P,2@...}), and the replication factor of Kafka's internal topics.
 * Formats the directory unless it was, starts, prints {@code READY <node id>} and runs until killed.
 */
public final class KafkaClusterNode {

    private KafkaClusterNode() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String clusterId = args[1];
        String nodeId = args[2];
        String brokerPort = args[3];
        String controllerPort = args[4];
        String voters = args[5];
        String internalReplicas = args[6];
        Files.createDirectories(dir);
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", nodeId);
        p.put("controller.quorum.voters", voters);
        p.put("listeners", "PLAINTEXT://127.0.0.1:" + brokerPort + ",CONTROLLER://127.0.0.1:" + controllerPort);
        p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put("log.dirs", dir.resolve("log").toString());
        p.put("num.partitions", "1");
        p.put("offsets.topic.replication.factor", internalReplicas);
        p.put("offsets.topic.num.partitions", "3");
        p.put("transaction.state.log.replication.factor", internalReplicas);
        p.put("transaction.state.log.min.isr", "1");
        p.put("share.coordinator.state.topic.replication.factor", internalReplicas);
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "2");
        p.put("log.segment.bytes", "16777216");
        p.put("log.cleaner.dedupe.buffer.size", "4194304");
        Path cfg = dir.resolve("server.properties");
        try (Writer w = Files.newBufferedWriter(cfg)) {
            p.store(w, "node " + nodeId + " of a LocalKafkaCluster");
        }
        int rc = StorageTool.execute(
                new String[] {"format", "-t", clusterId, "-c", cfg.toString(), "--ignore-formatted"},
                new PrintStream(OutputStream.nullOutputStream()));
        if (rc != 0) {
            throw new IllegalStateException("kafka-storage format of " + dir + " failed with exit " + rc);
        }
        KafkaRaftServer server = new KafkaRaftServer(new KafkaConfig(p, false), Time.SYSTEM);
        server.startup();
        System.out.println("READY " + nodeId);
        System.out.flush();
        Thread.currentThread().join(); // until killed
    }
}
