package io.tidemark.testkit.ceph;

import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real, throwaway single-node Ceph (Pacific, Debian 12's packages) for tests: one monitor, one
 * OSD on memstore (every object in RAM) and radosgw, all on 127.0.0.1 with cephx, started by {@code
 * deploy/ceph/start-ceph.sh} in about two seconds. No mgr: pools, RADOS I/O and RGW work without
 * it, only {@code ceph df} shows nothing.
 *
 * <p>The packages must be installed ({@code deploy/install-deps.sh} does it); {@link #start} fails
 * with that instruction otherwise, so tests are never silently skipped.
 *
 * <p>Where the script comes from: the testkit build copies {@code deploy/ceph/start-ceph.sh} into
 * this jar (see testkit/pom.xml) and {@link #start} writes it into the cluster directory. So there
 * is one copy of the script in the tree, and the fixture finds it whatever the working directory
 * is (module or top level) and also from the installed testkit jar, without git.
 *
 * <p>{@link #close()} kills the daemons by their pid files and deletes the directory; it also runs
 * when {@link #start} fails and, through a shutdown hook, when the JVM exits without closing. Use
 * one cluster per test class, or one per JVM through {@link CephClusterExtension}.
 *
 * <pre>{@code
 * try (CephCluster ceph = CephCluster.start(Files.createTempDirectory("ceph"))) {
 *     ceph.createPool("backups");
 *     // new Rados("admin"); confSet("mon_host", ceph.monHost()); confSet("key", ceph.adminKey()) ...
 *     ceph.createBucket("locked", true);
 *     // S3 at ceph.rgwEndpoint(), path style, keys ceph.s3AccessKey() / ceph.s3SecretKey()
 * }
 * }</pre>
 */
public final class CephCluster implements AutoCloseable {

    /** The region S3 clients sign for; RGW's default zone group accepts it. */
    public static final String REGION = "us-east-1";

    private static final Logger LOG = LoggerFactory.getLogger(CephCluster.class);
    private static final String SCRIPT = "start-ceph.sh";
    private static final Duration START_DEADLINE = Duration.ofSeconds(90);
    private static final Duration COMMAND_DEADLINE = Duration.ofSeconds(60);
    private static final Duration STOP_DEADLINE = Duration.ofSeconds(10);
    /** Pid file → the executable it must name (a check against pid reuse). */
    private static final Map<String, String> DAEMONS =
            Map.of("rgw.pid", "radosgw", "osd.pid", "ceph-osd", "mon.pid", "ceph-mon");

    private final Path dir;
    private final Map<String, String> env;
    private final Thread shutdownHook;
    private S3Client s3;
    private boolean closed;

    private CephCluster(Path dir, Map<String, String> env, Thread shutdownHook) {
        this.dir = dir;
        this.env = env;
        this.shutdownHook = shutdownHook;
    }

    /**
     * Starts a cluster in {@code dir} (created if missing; it becomes the cluster's and {@link
     * #close()} deletes it) on two free loopback ports, and waits until the OSD is up and RGW
     * serves S3.
     *
     * @throws IllegalStateException if Ceph is not installed, or the cluster is not ready within 90
     *     s (the message holds the start log and the daemons' last log lines)
     */
    public static CephCluster start(Path dir) {
        Objects.requireNonNull(dir, "dir");
        requireInstalled();
        Path root = dir.toAbsolutePath().normalize();
        Thread hook = new Thread(() -> stop(root), "ceph-cluster-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        long t0 = System.nanoTime();
        try {
            Files.createDirectories(root);
            Path script = extractScript(root);
            Path startLog = root.resolve("start.log");
            int monPort = freePort();
            int rgwPort = freePort();
            Files.deleteIfExists(startLog);
            // the script leaves the daemons running with its output: a file, not a pipe
            ExternalCommand start = ExternalCommand.of(
                            "bash",
                            script.toString(),
                            root.toString(),
                            Integer.toString(monPort),
                            Integer.toString(rgwPort))
                    .removeEnv(k -> k.startsWith("CEPH_"))
                    .outputFile(startLog)
                    .timeout(START_DEADLINE);
            int exit;
            try {
                exit = start.runForExit().exitCode();
            } catch (RetriableException e) {
                if (Thread.currentThread().isInterrupted()) {
                    throw new IllegalStateException("interrupted while starting Ceph in " + root, e);
                }
                throw new IllegalStateException(
                        "Ceph did not start within " + START_DEADLINE.toSeconds() + " s in " + root + "\n"
                                + diagnostics(root),
                        e);
            }
            if (exit != 0) {
                throw new IllegalStateException(
                        "deploy/ceph/start-ceph.sh failed (exit " + exit + ") in " + root + "\n" + diagnostics(root));
            }
            CephCluster cluster = new CephCluster(root, readEnv(root.resolve("env")), hook);
            LOG.info(
                    "Ceph started in {} ms: mon {}, RGW {}, dir {}",
                    (System.nanoTime() - t0) / 1_000_000,
                    cluster.monHost(),
                    cluster.rgwEndpoint(),
                    root);
            return cluster;
        } catch (IOException e) {
            stopAfterFailure(root, hook, e);
            throw new UncheckedIOException("cannot start Ceph in " + root, e);
        } catch (RuntimeException e) {
            stopAfterFailure(root, hook, e);
            throw e;
        }
    }

    /** The cluster's directory: ceph.conf, keyring, logs, daemon data. */
    public Path dir() {
        return dir;
    }

    /** The {@code ceph.conf} that clients and the CLI can read; it names the keyring with every key. */
    public Path confFile() {
        return Path.of(env.get("CEPH_CONF"));
    }

    /** The monitor address, {@code v2:127.0.0.1:<port>}, for {@code mon_host}. */
    public String monHost() {
        return env.get("CEPH_MON_HOST");
    }

    /** The base64 cephx secret of {@code client.admin} (all caps). A secret: never log it. */
    public String adminKey() {
        return env.get("CEPH_ADMIN_KEY");
    }

    /** RGW's S3 endpoint, {@code http://127.0.0.1:<port>}; path-style addressing only. */
    public URI rgwEndpoint() {
        return URI.create(env.get("S3_ENDPOINT"));
    }

    /** The access key id of the RGW user. */
    public String s3AccessKey() {
        return env.get("S3_ACCESS_KEY");
    }

    /** The secret key of the RGW user, random per cluster. A secret: never log it. */
    public String s3SecretKey() {
        return env.get("S3_SECRET_KEY");
    }

    /**
     * A new S3 client for RGW (path style, checksums only when required: RGW 16 answers 400 to the
     * SDK's default aws-chunked CRC32 trailers). The caller closes it.
     */
    public S3Client newS3Client() {
        return S3Client.builder()
                .endpointOverride(rgwEndpoint())
                .region(Region.of(REGION))
                .forcePathStyle(true)
                .httpClient(UrlConnectionHttpClient.create())
                .credentialsProvider(
                        StaticCredentialsProvider.create(AwsBasicCredentials.create(s3AccessKey(), s3SecretKey())))
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .build();
    }

    /** Creates a replicated (size 1, 8 PGs) RADOS pool with {@code ceph osd pool create}. */
    public synchronized void createPool(String name) {
        requireOpen();
        run(List.of("ceph", "osd", "pool", "create", name));
    }

    /**
     * Creates an RGW bucket over S3; with {@code objectLock} the bucket has S3 Object Lock enabled
     * (which also turns versioning on), and no default retention.
     */
    public synchronized void createBucket(String name, boolean objectLock) {
        requireOpen();
        if (s3 == null) {
            s3 = newS3Client();
        }
        s3.createBucket(r -> r.bucket(name).objectLockEnabledForBucket(objectLock));
    }

    /**
     * Adds the storage class {@code storageClass} (such as {@code GLACIER}) to the default placement
     * of the zone group and zone, with its own data pool, and restarts radosgw, which learns a new
     * class only at start (without the restart, objects moved to it read back empty). The cluster's
     * zone group changes, so a test that calls this wants a cluster of its own.
     */
    public synchronized void addStorageClass(String storageClass) {
        requireOpen();
        run(List.of(
                "radosgw-admin",
                "zonegroup",
                "placement",
                "add",
                "--rgw-zonegroup",
                "default",
                "--placement-id",
                "default-placement",
                "--storage-class",
                storageClass));
        run(List.of(
                "radosgw-admin",
                "zone",
                "placement",
                "add",
                "--rgw-zone",
                "default",
                "--placement-id",
                "default-placement",
                "--storage-class",
                storageClass,
                "--data-pool",
                "default.rgw." + storageClass.toLowerCase(java.util.Locale.ROOT) + ".data"));
        run(List.of(
                "bash",
                "-c",
                "set -e; p=$(cat \"$1/rgw.pid\"); kill \"$p\"; while kill -0 \"$p\" 2>/dev/null; do sleep 0.1; done;"
                        + " radosgw -n client.rgw -f </dev/null >>\"$1/log/rgw.out\" 2>&1 & echo $! > \"$1/rgw.pid\"",
                "restart-rgw",
                dir.toString()));
        if (s3 != null) {
            s3.close();
            s3 = null;
        }
        org.awaitility.Awaitility.await("RGW answers after its restart")
                .atMost(COMMAND_DEADLINE)
                .ignoreExceptions()
                .until(() -> {
                    try (S3Client c = newS3Client()) {
                        c.listBuckets();
                        return true;
                    }
                });
    }

    /** Runs {@code radosgw-admin args} against this cluster and returns what it printed. */
    public synchronized String radosgwAdmin(String... args) {
        requireOpen();
        List<String> command = new java.util.ArrayList<>(List.of("radosgw-admin"));
        command.addAll(List.of(args));
        return ExternalCommand.of(command)
                .env("CEPH_CONF", confFile().toString())
                .timeout(COMMAND_DEADLINE)
                .mergeStderr()
                .run()
                .stdout();
    }

    /**
     * Kills the daemons (SIGKILL, by their pid files), waits until they are gone, and deletes the
     * directory. Idempotent.
     *
     * @throws IllegalStateException if a daemon outlives the kill or the directory cannot be deleted
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (s3 != null) {
                s3.close();
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook stops the cluster itself
            }
            stop(dir);
        }
    }

    /** The directory and ports; never the keys. */
    @Override
    public String toString() {
        return "CephCluster[mon=" + monHost() + ", rgw=" + rgwEndpoint() + ", dir=" + dir + "]";
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the Ceph cluster in " + dir + " is closed");
        }
    }

    private void run(List<String> command) {
        ExternalCommand.of(command)
                .env("CEPH_CONF", confFile().toString())
                .timeout(COMMAND_DEADLINE)
                .mergeStderr()
                .ifMissing("install ceph-common (deploy/install-deps.sh)")
                .run();
    }

    private static void requireInstalled() {
        for (String tool : List.of("ceph-mon", "ceph-osd", "radosgw", "ceph", "radosgw-admin")) {
            if (Stream.of("/usr/bin", "/usr/local/bin").noneMatch(d -> Files.isExecutable(Path.of(d, tool)))) {
                throw new IllegalStateException(tool + " is not installed: run deploy/install-deps.sh (as root; it"
                        + " installs ceph-mon ceph-osd radosgw ceph-common from Debian's packages)");
            }
        }
    }

    private static Path extractScript(Path root) throws IOException {
        Path script = root.resolve(SCRIPT);
        try (InputStream in = CephCluster.class.getResourceAsStream(SCRIPT)) {
            if (in == null) {
                throw new IllegalStateException(SCRIPT + " is missing from the testkit jar; rebuild testkit (its"
                        + " pom copies deploy/ceph/" + SCRIPT + " into io/tidemark/testkit/ceph/)");
            }
            Files.copy(in, script);
        }
        return script;
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static Map<String, String> readEnv(Path file) throws IOException {
        Map<String, String> env = new HashMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                env.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        for (String key : List.of(
                "CEPH_CONF", "CEPH_MON_HOST", "CEPH_ADMIN_KEY", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY")) {
            if (env.get(key) == null || env.get(key).isBlank()) {
                throw new IllegalStateException(file + " has no " + key);
            }
        }
        return Map.copyOf(env);
    }

    private static void stopAfterFailure(Path root, Thread hook, Exception cause) {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            cause.addSuppressed(e);
        }
        try {
            stop(root);
        } catch (RuntimeException e) {
            cause.addSuppressed(e);
        }
    }

    /** Kills every daemon named by a pid file in {@code root}, waits until each is gone, deletes root. */
    private static void stop(Path root) {
        List<String> survivors = new ArrayList<>();
        List<ProcessHandle> killed = new ArrayList<>();
        for (Map.Entry<String, String> daemon : DAEMONS.entrySet()) {
            Path pidFile = root.resolve(daemon.getKey());
            long pid;
            try {
                pid = Long.parseLong(Files.readString(pidFile).strip());
            } catch (IOException | NumberFormatException e) {
                continue; // never started
            }
            ProcessHandle.of(pid)
                    .filter(p -> p.info().command().orElse("").endsWith(daemon.getValue()))
                    .ifPresent(p -> {
                        p.destroyForcibly();
                        killed.add(p);
                    });
        }
        for (ProcessHandle p : killed) {
            try {
                // A killed daemon whose parent (the finished script) is gone waits as a zombie until
                // init reaps it; a zombie holds no ports or files, so it counts as gone.
                Awaitility.await("pid " + p.pid() + " gone")
                        .atMost(STOP_DEADLINE)
                        .pollInterval(Duration.ofMillis(20))
                        .until(() -> isGone(p.pid()));
            } catch (ConditionTimeoutException e) {
                survivors.add(Long.toString(p.pid()));
            }
        }
        deleteRecursively(root);
        if (!survivors.isEmpty()) {
            throw new IllegalStateException("Ceph daemons " + survivors + " of " + root + " survived SIGKILL");
        }
    }

    private static boolean isGone(long pid) {
        try {
            return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                    .anyMatch(l -> l.startsWith("State:") && l.contains("Z"));
        } catch (IOException e) {
            return true; // no /proc entry: reaped
        }
    }

    private static void deleteRecursively(Path root) {
        try {
            FileTrees.delete(root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the Ceph directory " + root, e);
        }
    }

    private static String diagnostics(Path root) {
        StringBuilder out = new StringBuilder();
        appendTail(out, root.resolve("start.log"), 40);
        for (String log : List.of("mon.out", "osd.out", "osd-mkfs.err", "rgw.out", "mon.a.log", "osd.0.log")) {
            appendTail(out, root.resolve("log").resolve(log), 15);
        }
        return out.toString();
    }

    private static void appendTail(StringBuilder out, Path file, int lines) {
        try {
            List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
            out.append("--- ").append(file).append(" (last ").append(lines).append(" lines)\n");
            all.subList(Math.max(0, all.size() - lines), all.size())
                    .forEach(l -> out.append(l).append('\n'));
        } catch (IOException e) {
            // no such log: the daemon never started
        }
    }
}
