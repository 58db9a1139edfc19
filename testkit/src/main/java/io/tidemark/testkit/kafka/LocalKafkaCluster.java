package io.tidemark.testkit.kafka;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.common.Uuid;

/**
 * A Kafka cluster of {@code n} KRaft nodes on loopback, each a separate JVM ({@link
 * KafkaClusterNode}) that a test can kill with SIGKILL and start again on its data, as an operator's
 * cluster loses and regains brokers (KafkaClusterIT, the topology and firing-lag benches).
 */
public final class LocalKafkaCluster implements AutoCloseable {

    private final Path dir;
    private final String clusterId = Uuid.randomUuid().toString();
    private final int[] brokerPorts;
    private final int[] controllerPorts;
    private final Process[] nodes;
    private final int internalReplicas;

    private LocalKafkaCluster(Path dir, int n) throws IOException {
        this.dir = dir;
        this.brokerPorts = new int[n];
        this.controllerPorts = new int[n];
        this.nodes = new Process[n];
        this.internalReplicas = Math.min(3, n);
        for (int i = 0; i < n; i++) {
            brokerPorts[i] = freePort();
            controllerPorts[i] = freePort();
        }
    }

    /** Starts {@code n} nodes and returns once each has said it serves. */
    public static LocalKafkaCluster start(Path dir, int n) throws IOException {
        LocalKafkaCluster c = new LocalKafkaCluster(dir, n);
        try {
            for (int i = 0; i < n; i++) {
                c.launch(i);
            }
            for (int i = 0; i < n; i++) {
                c.awaitReady(i);
            }
            return c;
        } catch (RuntimeException | IOException e) {
            c.close();
            throw e;
        }
    }

    public String bootstrapServers() {
        return IntStream.of(brokerPorts).mapToObj(p -> "127.0.0.1:" + p).collect(Collectors.joining(","));
    }

    public int size() {
        return nodes.length;
    }

    /** Whether node {@code i} runs. */
    public boolean alive(int i) {
        return nodes[i] != null && nodes[i].isAlive();
    }

    /** Kills node {@code i} with SIGKILL (no clean shutdown) and waits until it is gone. */
    public void kill(int i) throws InterruptedException {
        nodes[i].destroyForcibly();
        nodes[i].waitFor(60, TimeUnit.SECONDS);
    }

    /** Starts node {@code i} again on its data and waits until it serves. */
    public void restart(int i) throws IOException {
        launch(i);
        awaitReady(i);
    }

    private void launch(int i) throws IOException {
        String voters = IntStream.range(0, nodes.length)
                .mapToObj(k -> (k + 1) + "@127.0.0.1:" + controllerPorts[k])
                .collect(Collectors.joining(","));
        Path nodeDir = dir.resolve("node-" + (i + 1));
        Files.createDirectories(nodeDir);
        Path log = nodeDir.resolve("node.log");
        Files.deleteIfExists(log);
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                System.getProperty("java.class.path"),
                KafkaClusterNode.class.getName(),
                nodeDir.toString(),
                clusterId,
                String.valueOf(i + 1),
                String.valueOf(brokerPorts[i]),
                String.valueOf(controllerPorts[i]),
                voters,
                String.valueOf(internalReplicas)));
        nodes[i] = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
    }

    private void awaitReady(int i) {
        Path log = dir.resolve("node-" + (i + 1)).resolve("node.log");
        await().atMost(Duration.ofMinutes(3))
                .pollInterval(Duration.ofMillis(200))
                .until(() -> !nodes[i].isAlive()
                        || (Files.exists(log)
                                && Files.readAllLines(log).stream().anyMatch(l -> l.startsWith("READY "))));
        if (!nodes[i].isAlive()) {
            throw new IllegalStateException("Kafka node " + (i + 1) + " exited; see " + log);
        }
    }

    @Override
    public void close() {
        for (Process p : nodes) {
            if (p != null) {
                p.destroyForcibly();
            }
        }
        for (Process p : nodes) {
            if (p != null) {
                try {
                    p.waitFor(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
