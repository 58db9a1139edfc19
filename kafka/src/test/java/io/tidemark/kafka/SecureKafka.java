package io.tidemark.kafka;

import io.tidemark.core.Secret;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Writer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;

/**
 * A single-node KRaft broker whose client listener speaks SASL_SSL with SCRAM-SHA-512, as a
 * production cluster would: a self-signed certificate for 127.0.0.1 made with the JDK's keytool, a
 * trust store holding it, and one SCRAM user created when the log directory is formatted.
 */
final class SecureKafka implements AutoCloseable {

    static final String USER = "tidemark";
    static final String MECHANISM = "SCRAM-SHA-512";
    private static final String STORE_PASSWORD = "store-pw-1";

    private final KafkaRaftServer server;
    private final int securePort;
    private final Path truststore;
    private final Path otherTruststore;

    private SecureKafka(KafkaRaftServer server, int securePort, Path truststore, Path otherTruststore) {
        this.server = server;
        this.securePort = securePort;
        this.truststore = truststore;
        this.otherTruststore = otherTruststore;
    }

    static SecureKafka start(Path dir, String password) throws IOException {
        Files.createDirectories(dir);
        Path keystore = dir.resolve("broker.p12");
        Path truststore = dir.resolve("ca.p12");
        makeCertificate(dir, "broker", keystore, truststore);
        Path otherTruststore = dir.resolve("other-ca.p12");
        makeCertificate(dir, "other", dir.resolve("other.p12"), otherTruststore);
        int internal = freePort();
        int secure = freePort();
        int controller = freePort();
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", "1");
        p.put("controller.quorum.voters", "1@127.0.0.1:" + controller);
        p.put(
                "listeners",
                "INTERNAL://127.0.0.1:" + internal + ",SECURE://127.0.0.1:" + secure + ",CONTROLLER://127.0.0.1:"
                        + controller);
        p.put("advertised.listeners", "INTERNAL://127.0.0.1:" + internal + ",SECURE://127.0.0.1:" + secure);
        p.put("listener.security.protocol.map", "INTERNAL:PLAINTEXT,SECURE:SASL_SSL,CONTROLLER:PLAINTEXT");
        p.put("inter.broker.listener.name", "INTERNAL");
        p.put("controller.listener.names", "CONTROLLER");
        p.put("sasl.enabled.mechanisms", MECHANISM);
        p.put(
                "listener.name.secure.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;");
        p.put("listener.name.secure.ssl.keystore.location", keystore.toString());
        p.put("listener.name.secure.ssl.keystore.password", STORE_PASSWORD);
        p.put("listener.name.secure.ssl.keystore.type", "PKCS12");
        p.put("log.dirs", dir.resolve("log").toString());
        p.put("num.partitions", "1");
        p.put("offsets.topic.replication.factor", "1");
        p.put("offsets.topic.num.partitions", "1");
        p.put("transaction.state.log.replication.factor", "1");
        p.put("transaction.state.log.min.isr", "1");
        p.put("share.coordinator.state.topic.replication.factor", "1");
        p.put("share.coordinator.state.topic.min.isr", "1");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("num.network.threads", "2");
        p.put("num.io.threads", "2");
        Path cfg = dir.resolve("server.properties");
        try (Writer w = Files.newBufferedWriter(cfg)) {
            p.store(w, "SecureKafka");
        }
        int rc = StorageTool.execute(
                new String[] {
                    "format",
                    "-t",
                    Uuid.randomUuid().toString(),
                    "-c",
                    cfg.toString(),
                    "--add-scram",
                    MECHANISM + "=[name=" + USER + ",password=" + password + "]"
                },
                new PrintStream(OutputStream.nullOutputStream()));
        if (rc != 0) {
            throw new IllegalStateException("kafka-storage format failed with exit " + rc);
        }
        KafkaRaftServer server = new KafkaRaftServer(new KafkaConfig(p, false), Time.SYSTEM);
        server.startup();
        return new SecureKafka(server, secure, truststore, otherTruststore);
    }

    /** A self-signed certificate for 127.0.0.1 in {@code keystore}, and a trust store holding it. */
    private static void makeCertificate(Path dir, String alias, Path keystore, Path truststore) {
        String keytool =
                Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        Duration limit = Duration.ofSeconds(60);
        ExternalCommand.of(List.of(
                        keytool,
                        "-genkeypair",
                        "-alias",
                        alias,
                        "-keyalg",
                        "RSA",
                        "-keysize",
                        "2048",
                        "-dname",
                        "CN=127.0.0.1",
                        "-ext",
                        "SAN=ip:127.0.0.1",
                        "-validity",
                        "2",
                        "-keystore",
                        keystore.toString(),
                        "-storetype",
                        "PKCS12",
                        "-storepass",
                        STORE_PASSWORD,
                        "-keypass",
                        STORE_PASSWORD))
                .timeout(limit)
                .run();
        Path cert = dir.resolve(alias + ".crt");
        ExternalCommand.of(List.of(
                        keytool,
                        "-exportcert",
                        "-alias",
                        alias,
                        "-keystore",
                        keystore.toString(),
                        "-storetype",
                        "PKCS12",
                        "-storepass",
                        STORE_PASSWORD,
                        "-file",
                        cert.toString()))
                .timeout(limit)
                .run();
        ExternalCommand.of(List.of(
                        keytool,
                        "-importcert",
                        "-noprompt",
                        "-alias",
                        alias,
                        "-file",
                        cert.toString(),
                        "-keystore",
                        truststore.toString(),
                        "-storetype",
                        "PKCS12",
                        "-storepass",
                        STORE_PASSWORD))
                .timeout(limit)
                .run();
    }

    String bootstrapServers() {
        return "127.0.0.1:" + securePort;
    }

    /** A trust store holding the broker's certificate. */
    KafkaSecurity.Tls tls() {
        return new KafkaSecurity.Tls(truststore, Secret.of(STORE_PASSWORD, "test"), java.util.Optional.empty());
    }

    /** A trust store holding some other certificate: the broker's does not check out against it. */
    KafkaSecurity.Tls wrongTls() {
        return new KafkaSecurity.Tls(otherTruststore, Secret.of(STORE_PASSWORD, "test"), java.util.Optional.empty());
    }

    @Override
    public void close() {
        server.shutdown();
        server.awaitShutdown();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
