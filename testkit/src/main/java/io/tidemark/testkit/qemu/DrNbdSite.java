package io.tidemark.testkit.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A real DR site for continuous-protection tests: a {@code qemu-storage-daemon} serving one raw
 * replica as a writable NBD export ({@code <name>.nbd}, export {@code <name>}), and a QMP monitor
 * ({@code <name>.qmp}) for taking points at the DR site. The replica is raw, as ADR 19 says: a mirrored
 * write then never changes image metadata, so a killed daemon ({@link #kill()}) loses no
 * acknowledged write (they are in the host's page cache) although the export is write-back ({@code
 * writethrough=off}). A qcow2 replica loses them: its L2 updates sit in the daemon's memory. {@link #stop()} quits it cleanly, {@link
 * #restart()} starts it again on the same replica: a DR-link outage.
 */
public final class DrNbdSite implements AutoCloseable {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(20);
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "qsd-reaper"));
    }

    private final Path dir;
    private final String name;
    private final Path image;
    private final long size;
    private final int tcpPort; // 0: Unix socket
    private final TestPki tls; // null: plain NBD
    private Process process;

    private DrNbdSite(Path dir, String name, long size, int tcpPort) {
        this(dir, name, size, tcpPort, null);
    }

    private DrNbdSite(Path dir, String name, long size, int tcpPort, TestPki tls) {
        this.tcpPort = tcpPort;
        this.tls = tls;
        this.dir = dir.toAbsolutePath();
        this.name = name;
        this.image = this.dir.resolve(name + "-replica.raw");
        this.size = size;
    }

    /** Creates an empty raw replica of {@code size} bytes and serves it. */
    public static DrNbdSite start(Path dir, String name, long size) {
        return start(new DrNbdSite(dir, name, size, 0));
    }

    /** Like {@link #start(Path, String, long)}, serving NBD on TCP 127.0.0.1 at a free port instead. */
    public static DrNbdSite startTcp(Path dir, String name, long size) {
        return start(new DrNbdSite(dir, name, size, freePort()));
    }

    /**
     * Like {@link #startTcp}, with NBD over TLS: the server requires TLS ({@code tls-creds-x509}
     * from {@link TestPki#serverDir()}, {@code verify-peer=on}, so clients need a certificate of the
     * same CA too).
     */
    public static DrNbdSite startTcpTls(Path dir, String name, long size, TestPki pki) {
        return start(new DrNbdSite(dir, name, size, freePort(), pki));
    }

    private static int freePort() {
        int port;
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return port;
    }

    private static DrNbdSite start(DrNbdSite site) {
        ExternalCommand.of("qemu-img", "create", "-q", "-f", "raw", site.image.toString(), Long.toString(site.size))
                .mergeStderr()
                .ifMissing("install qemu-utils")
                .run();
        site.launch();
        return site;
    }

    private void launch() {
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-storage-daemon"));
        if (tls != null) {
            cmd.add("--object");
            cmd.add("tls-creds-x509,id=dr-tls,dir=" + tls.serverDir() + ",endpoint=server,verify-peer=on");
        }
        cmd.addAll(List.of(
                "--blockdev",
                "driver=file,filename=" + image + ",node-name=replica-file",
                "--blockdev",
                "driver=raw,file=replica-file,node-name=replica",
                "--nbd-server",
                tcpPort == 0
                        ? "addr.type=unix,addr.path=" + nbdSocket()
                        : "addr.type=inet,addr.host=127.0.0.1,addr.port=" + tcpPort
                                + (tls == null ? "" : ",tls-creds=dr-tls"),
                "--export",
                "type=nbd,id=dr,node-name=replica,name=" + name + ",writable=on,writethrough=off",
                "--chardev",
                "socket,path=" + qmpSocket() + ",server=on,wait=off,id=mon0",
                "--monitor",
                "chardev=mon0"));
        try {
            Files.deleteIfExists(nbdSocket());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        process = ExternalCommand.of(cmd)
                .ifMissing("install qemu-system-common (qemu-storage-daemon)")
                .start(dir.resolve(name + "-qsd.log"))
                .process();
        LIVE.add(process);
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (tcpPort == 0 ? !Files.exists(nbdSocket()) : !listening()) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("qemu-storage-daemon for " + name + " did not serve " + nbdSocket()
                        + "; see " + dir.resolve(name + "-qsd.log"));
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
        }
    }

    private boolean listening() {
        try (java.net.Socket s = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(), tcpPort)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** The NBD URI of the replica. */
    public String uri() {
        return tcpPort == 0
                ? "nbd+unix:///" + name + "?socket=" + nbdSocket()
                : "nbd://127.0.0.1:" + tcpPort + "/" + name;
    }

    public String exportName() {
        return name;
    }

    public Path nbdSocket() {
        return dir.resolve(name + ".nbd");
    }

    public Path qmpSocket() {
        return dir.resolve(name + ".qmp");
    }

    /** The replica's node name in the daemon (for points taken at the DR site). */
    public String replicaNode() {
        return "replica";
    }

    public Path image() {
        return image;
    }

    public long size() {
        return size;
    }

    public boolean running() {
        return process != null && process.isAlive();
    }

    /** Runs a QMP command on the daemon's monitor (one connection per call). */
    public JsonNode qmp(String command, ObjectNode args) {
        try (MonitorConnection m = MonitorConnection.open(qmpSocket(), START_TIMEOUT)) {
            return m.execute(command, args);
        } catch (IOException e) {
            throw new UncheckedIOException("QMP of the DR site " + name + ": " + e.getMessage(), e);
        }
    }

    /**
     * SHA-256 of the replica's bytes as its NBD export serves them now (read by {@code qemu-img
     * convert} over NBD, not through any Tidemark code).
     */
    public String sha256() {
        Path raw = dir.resolve(name + "-read.raw");
        try {
            List<String> convert = tls == null
                    ? List.of("qemu-img", "convert", "-f", "raw", "-O", "raw", uri(), raw.toString())
                    : List.of(
                            "qemu-img",
                            "convert",
                            "--object",
                            "tls-creds-x509,id=t,dir=" + tls.clientDir() + ",endpoint=client",
                            "--image-opts",
                            "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1,"
                                    + "file.server.port=" + tcpPort + ",file.export=" + name + ",file.tls-creds=t",
                            "-O",
                            "raw",
                            raw.toString());
            ExternalCommand.of(convert).mergeStderr().run();
            return sha256(raw);
        } finally {
            try {
                Files.deleteIfExists(raw);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** SHA-256 of a file's bytes. */
    public static String sha256(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Quits the daemon cleanly (SIGTERM): the DR link is down until {@link #restart()}. */
    public void stop() {
        if (process == null) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while stopping qemu-storage-daemon " + name, e);
        } finally {
            LIVE.remove(process);
        }
    }

    /** Kills the daemon (SIGKILL): no clean close; its bitmaps are lost. */
    public void kill() {
        if (process == null) {
            return;
        }
        process.destroyForcibly();
        try {
            process.waitFor(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while killing qemu-storage-daemon " + name, e);
        } finally {
            LIVE.remove(process);
        }
    }

    /** Starts the daemon again on the same replica after {@link #kill()}. */
    public void relaunch() {
        launch();
    }

    /** Serves the same replica again. */
    public void restart() {
        stop();
        launch();
    }

    @Override
    public void close() {
        stop();
    }

    @Override
    public String toString() {
        return "DrNbdSite[" + uri() + "]";
    }
}
