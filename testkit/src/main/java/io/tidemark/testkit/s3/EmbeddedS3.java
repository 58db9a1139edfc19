package io.tidemark.testkit.s3;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import org.awaitility.Awaitility;
import org.gaul.s3proxy.BlobStores;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.blobstore.BlobStore;

/**
 * A real S3 endpoint for tests: S3Proxy running in this JVM on 127.0.0.1, with AWS V2/V4
 * authentication, a {@code transient} (in-memory) or {@code filesystem-nio2} back end, and unknown
 * headers ignored (as AWS SDK 2.30+ sends some). Clients use path-style addressing against {@link
 * #endpoint()}, region {@link #REGION} and the key pair {@link #accessKey()} / {@link #secretKey()}
 * (the secret is random per instance).
 *
 * <p>With {@link Builder#virtualHost(String) virtualHost("s3.local")} the proxy serves
 * virtual-hosted-style requests ({@code http://<bucket>.s3.local:<port>/<key>}), as Alibaba OSS
 * requires. Those names must resolve to 127.0.0.1 in the test JVM, which needs the JVM flag {@code
 * -Djdk.net.hosts.file=<file>} with lines {@code 127.0.0.1 s3.local} and {@code 127.0.0.1
 * <bucket>.s3.local} per bucket (the file takes no wildcards); {@link #start()} and {@link
 * #createBucket(String)} fail with that instruction when a name does not resolve.
 *
 * <pre>{@code
 * try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
 *     s3.createBucket("tidemark");
 *     // S3Client.builder().endpointOverride(s3.endpoint()).forcePathStyle(true)...
 * }
 * }</pre>
 */
public final class EmbeddedS3 implements AutoCloseable {

    /** The region clients should sign for; S3Proxy accepts any. */
    public static final String REGION = "us-east-1";

    private static final Duration START_DEADLINE = Duration.ofSeconds(60);

    private final int requestedPort;
    private final Path baseDir;
    private final String virtualHost;
    private final String accessKey;
    private final String secretKey;
    private BlobStore blobStore;
    private S3Proxy proxy;

    private EmbeddedS3(Builder builder) {
        this.requestedPort = builder.port;
        this.baseDir = builder.baseDir;
        this.virtualHost = builder.virtualHost;
        this.accessKey = builder.accessKey;
        this.secretKey = builder.secretKey != null
                ? builder.secretKey
                : "tidemark-test-"
                        + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
    }

    /** A builder for a transient, path-style proxy on a free port. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Starts the proxy and waits (up to 60 s) until it accepts connections.
     *
     * @return this
     * @throws IllegalStateException if it is already started or does not come up in time
     */
    public EmbeddedS3 start() {
        if (proxy != null) {
            throw new IllegalStateException("EmbeddedS3 already started at " + endpoint());
        }
        if (virtualHost != null) {
            requireLoopback(virtualHost);
        }
        Properties properties = new Properties();
        String provider = "transient";
        if (baseDir != null) {
            provider = "filesystem-nio2";
            properties.setProperty("jclouds.filesystem.basedir", baseDir.toString());
        }
        blobStore = BlobStores.create(provider, properties);
        S3Proxy.Builder builder = S3Proxy.builder()
                .blobStore(blobStore)
                .endpoint(URI.create("http://127.0.0.1:" + requestedPort))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, accessKey, secretKey)
                .ignoreUnknownHeaders(true);
        if (virtualHost != null) {
            builder.virtualHost(virtualHost);
        }
        S3Proxy started = builder.build();
        try {
            started.start();
        } catch (Exception e) { // S3Proxy.start() declares Exception
            throw new IllegalStateException("S3Proxy did not start on 127.0.0.1:" + requestedPort, e);
        }
        proxy = started;
        Awaitility.await("S3Proxy on 127.0.0.1:" + proxy.getPort())
                .atMost(START_DEADLINE)
                .pollInterval(Duration.ofMillis(10))
                .until(() -> "STARTED".equals(proxy.getState()) && accepts(proxy.getPort()));
        return this;
    }

    /**
     * The endpoint clients connect to: {@code http://127.0.0.1:<port>}, or {@code
     * http://<virtualHost>:<port>} in virtual-host mode.
     */
    public URI endpoint() {
        requireStarted();
        String host = virtualHost != null ? virtualHost : "127.0.0.1";
        return URI.create("http://" + host + ":" + proxy.getPort());
    }

    /** The port the proxy listens on. */
    public int port() {
        requireStarted();
        return proxy.getPort();
    }

    /** The access key id clients must use. */
    public String accessKey() {
        return accessKey;
    }

    /** The secret key clients must use; random per instance unless set on the builder. */
    public String secretKey() {
        return secretKey;
    }

    /** The region clients should use. */
    public String region() {
        return REGION;
    }

    /** The virtual host, if the proxy serves virtual-hosted-style requests. */
    public Optional<String> virtualHost() {
        return Optional.ofNullable(virtualHost);
    }

    /**
     * Creates a bucket (directly in the back end, no HTTP). In virtual-host mode also checks that
     * {@code <name>.<virtualHost>} resolves to loopback.
     */
    public void createBucket(String name) {
        requireStarted();
        if (virtualHost != null) {
            requireLoopback(name + "." + virtualHost);
        }
        blobStore.createContainer(name);
    }

    /** Stops the proxy; idempotent. Clients see refused connections afterwards. */
    @Override
    public void close() {
        if (proxy == null) {
            return;
        }
        S3Proxy stopping = proxy;
        proxy = null;
        try {
            stopping.stop();
        } catch (Exception e) { // S3Proxy.stop() declares Exception
            throw new IllegalStateException("S3Proxy did not stop cleanly", e);
        } finally {
            blobStore.close();
        }
    }

    @Override
    public String toString() {
        return proxy == null ? "EmbeddedS3[stopped]" : "EmbeddedS3[" + endpoint() + "]";
    }

    private void requireStarted() {
        if (proxy == null) {
            throw new IllegalStateException("EmbeddedS3 is not started; call start() first");
        }
    }

    private static boolean accepts(int port) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static void requireLoopback(String host) {
        String hint = "virtual-host mode needs '" + host + "' to resolve to 127.0.0.1: start the JVM with"
                + " -Djdk.net.hosts.file=<file> listing '127.0.0.1 " + host + "' (current jdk.net.hosts.file="
                + System.getProperty("jdk.net.hosts.file") + ")";
        try {
            if (!InetAddress.getByName(host).isLoopbackAddress()) {
                throw new IllegalStateException(hint);
            }
        } catch (UnknownHostException e) {
            throw new IllegalStateException(hint, e);
        }
    }

    /** Settings for an {@link EmbeddedS3}; every one is optional. */
    public static final class Builder {
        private int port;
        private Path baseDir;
        private String virtualHost;
        private String accessKey = "AKIDTIDEMARKTEST";
        private String secretKey;

        private Builder() {}

        /** A fixed port; 0 (the default) picks a free one. */
        public Builder port(int port) {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port out of range: " + port);
            }
            this.port = port;
            return this;
        }

        /** Keep objects under {@code baseDir} ({@code filesystem-nio2}) instead of in memory. */
        public Builder filesystem(Path baseDir) {
            this.baseDir = Objects.requireNonNull(baseDir, "baseDir");
            return this;
        }

        /** Serve virtual-hosted-style requests for {@code host}; see the class Javadoc. */
        public Builder virtualHost(String host) {
            this.virtualHost = Objects.requireNonNull(host, "host");
            return this;
        }

        /** A fixed key pair instead of the default id and a random secret. */
        public Builder credentials(String accessKey, String secretKey) {
            this.accessKey = Objects.requireNonNull(accessKey, "accessKey");
            this.secretKey = Objects.requireNonNull(secretKey, "secretKey");
            return this;
        }

        /** An unstarted proxy. */
        public EmbeddedS3 build() {
            return new EmbeddedS3(this);
        }
    }
}
