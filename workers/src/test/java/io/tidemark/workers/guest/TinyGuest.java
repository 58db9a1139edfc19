package io.tidemark.workers.guest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.process.ExternalCommand;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A real tiny Linux guest under TCG with qemu-guest-agent, booted with the QEMU command line of
 * {@link CheckGuest#commandLine} (the drill's check guest), for tests that need a guest OS (file
 * system freeze, a guest writing while it is backed up). Boot takes about 10 s on an idle 2-core
 * machine and up to a minute or two under load; boot it once per test class.
 *
 * <p>The guest: a Debian kernel and a busybox initramfs built by {@code
 * deploy/guest/build-tiny-guest.sh} into {@link #cacheDir()} (once per machine; later calls reuse
 * it). Its one data disk {@code vd0} (virtio-blk, node {@code vd0-fmt}) is a fresh qcow2 v3 image
 * holding an empty ext4 file system, mounted on {@code /mnt} in the guest; qemu-guest-agent
 * listens on the {@code org.qemu.guest_agent.0} port.
 *
 * <p>Files in {@code dir} (keep it short: Unix socket paths are limited to about 107 bytes):
 * {@code <name>.qmp} (the QMP socket, free for the system under test), {@code <name>.qga} (the
 * guest agent's socket; QEMU serves one client at a time), {@code <name>-vd0.qcow2}, {@code
 * <name>.console} (the guest's serial console) and {@code <name>.log} (QEMU's output). This is the
 * layout {@code QmpHypervisor} expects in its socket directory.
 *
 * <p>QEMU is stopped by {@link #close()} (SIGTERM: QEMU closes its images cleanly), and killed by
 * a JVM shutdown hook if a test forgot to.
 */
public final class TinyGuest implements AutoCloseable {

    /** How long {@link #boot} waits for "init: ready" on the console (TCG on a loaded machine). */
    public static final Duration BOOT_TIMEOUT = Duration.ofMinutes(5);

    /** The data disk's guest device id, which is also the disk name a hypervisor reports. */
    public static final String DISK = "vd0";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();
    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "guest-agent-deadline");
        t.setDaemon(true);
        return t;
    });

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "guest-reaper"));
    }

    private final Path dir;
    private final String name;
    private final ExternalCommand.Running process;

    /** The result of a command run in the guest. */
    public record Exec(int exitCode, String stdout, String stderr) {}

    private TinyGuest(Path dir, String name, ExternalCommand.Running process) {
        this.dir = dir;
        this.name = name;
        this.process = process;
    }

    /**
     * Where the kernel and initramfs are cached: {@code $TIDEMARK_GUEST_CACHE}, else {@code
     * ~/.cache/tidemark/guest}.
     */
    public static Path cacheDir() {
        String env = System.getenv("TIDEMARK_GUEST_CACHE");
        return env != null && !env.isBlank()
                ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache", "tidemark", "guest");
    }

    /**
     * Builds the guest's kernel and initramfs into {@link #cacheDir()} unless they are there
     * (serialised across JVMs by a file lock). Needs network access to the Debian mirror once.
     *
     * @return {@code [vmlinuz, initrd.gz]}
     */
    public static List<Path> build() {
        Path cache = cacheDir();
        try {
            Files.createDirectories(cache);
            try (FileChannel lockFile = FileChannel.open(
                            cache.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                    FileLock lock = lockFile.lock()) {
                run(Duration.ofMinutes(10), script().toString(), cache.toString());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot build the tiny guest in " + cache, e);
        }
        return List.of(cache.resolve("vmlinuz"), cache.resolve("initrd.gz"));
    }

    /** {@code deploy/guest/build-tiny-guest.sh}, found from the working directory upwards. */
    private static Path script() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path s = p.resolve("deploy/guest/build-tiny-guest.sh");
            if (Files.isRegularFile(s)) {
                return s;
            }
        }
        throw new IllegalStateException("deploy/guest/build-tiny-guest.sh not found above "
                + Path.of("").toAbsolutePath() + "; run the tests from the Tidemark source tree");
    }

    /**
     * Builds the guest if needed, creates its data disk, boots it and waits until its init printed
     * "init: ready" and the guest agent answers.
     *
     * @param dir a short directory for the sockets, disk and logs
     * @param name the VM's name (also the socket names' stem)
     * @param dataDiskBytes size of the ext4 data disk, at least 16 MiB
     */
    public static TinyGuest boot(Path dir, String name, long dataDiskBytes) {
        return boot(dir, name, dataDiskBytes, 0, 0);
    }

    /**
     * As {@link #boot(Path, String, long)}, with {@code rawDisks} more empty disks {@code vd1},
     * {@code vd2}, ... of {@code rawDiskBytes} each (qcow2 files, no file system; {@code /dev/vdb},
     * {@code /dev/vdc}, ... in the guest).
     */
    public static TinyGuest boot(Path dir, String name, long dataDiskBytes, int rawDisks, long rawDiskBytes) {
        Path abs = dir.toAbsolutePath();
        List<Path> images = new java.util.ArrayList<>();
        try {
            Files.createDirectories(abs);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + abs, e);
        }
        for (int i = 1; i <= rawDisks; i++) {
            Path f = abs.resolve(name + "-vd" + i + ".qcow2");
            run(
                    Duration.ofMinutes(1),
                    "qemu-img",
                    "create",
                    "-q",
                    "-f",
                    "qcow2",
                    f.toString(),
                    Long.toString(rawDiskBytes));
            images.add(f);
        }
        return boot(dir, name, dataDiskBytes, images);
    }

    /**
     * As {@link #boot(Path, String, long)}, with the caller's qcow2 images as the disks {@code vd1},
     * {@code vd2}, ... ({@code /dev/vdb}, ... in the guest), in that order: for a disk that must
     * hold data before the guest starts (write it with {@code qemu-img} first). QEMU opens them
     * read-write and locks them while it runs; they stay where they are after {@link #close()}.
     */
    public static TinyGuest boot(Path dir, String name, long dataDiskBytes, List<Path> diskImages) {
        List<Path> kernel = build();
        Path abs = dir.toAbsolutePath();
        Path disk = abs.resolve(name + "-" + DISK + ".qcow2");
        Path raw = abs.resolve(name + "-" + DISK + ".raw");
        try {
            Files.createDirectories(abs);
            try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ch.truncate(0);
                ch.position(dataDiskBytes - 1).write(java.nio.ByteBuffer.wrap(new byte[1]));
            }
            run(Duration.ofMinutes(1), "mkfs.ext4", "-q", "-F", raw.toString());
            run(
                    Duration.ofMinutes(1),
                    "qemu-img",
                    "convert",
                    "-O",
                    "qcow2",
                    "-o",
                    "compat=1.1",
                    raw.toString(),
                    disk.toString());
            Files.delete(raw);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the data disk " + disk, e);
        }
        Path console = abs.resolve(name + ".console");
        // the same launcher as the drill's check guest (product code), with the data disk as vd0
        List<String> cmd = CheckGuest.commandLine(
                new CheckGuest.Kernel(kernel.get(0), kernel.get(1)), name, abs, disks(disk, diskImages));
        ExternalCommand.Running p =
                ExternalCommand.of(cmd).ifMissing("install qemu-system-x86").start(abs.resolve(name + ".log"));
        LIVE.add(p.process());
        TinyGuest g = new TinyGuest(abs, name, p);
        try {
            g.awaitReady(console);
            return g;
        } catch (RuntimeException e) {
            g.close();
            throw e;
        }
    }

    private static List<CheckGuest.Disk> disks(Path data, List<Path> images) {
        List<CheckGuest.Disk> out = new java.util.ArrayList<>(List.of(new CheckGuest.Disk(DISK, data, "qcow2")));
        for (int i = 0; i < images.size(); i++) {
            out.add(new CheckGuest.Disk("vd" + (i + 1), images.get(i).toAbsolutePath(), "qcow2"));
        }
        return out;
    }

    private void awaitReady(Path console) {
        long deadline = System.nanoTime() + BOOT_TIMEOUT.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new IllegalStateException("QEMU for guest " + name + " exited with "
                        + process.process().exitValue() + " while booting; console:\n" + tail(console) + "\nlog:\n"
                        + tail(log()));
            }
            if (tail(console).contains("init: ready")) {
                break;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("guest " + name + " printed no 'init: ready' within " + BOOT_TIMEOUT
                        + "; console:\n" + tail(console));
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        if (tail(console).contains("/dev/vda not mounted")) {
            throw new IllegalStateException(
                    "guest " + name + " could not mount its data disk; console:\n" + tail(console));
        }
        while (true) { // qemu-ga daemonises right before "init: ready"; let it open its port
            try {
                agent("guest-ping", null, Duration.ofSeconds(10));
                return;
            } catch (IllegalStateException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
        }
    }

    public String name() {
        return name;
    }

    /** The QMP socket, for the system under test: {@code <dir>/<name>.qmp}. */
    public Path qmpSocket() {
        return dir.resolve(name + ".qmp");
    }

    /** The guest agent's socket: {@code <dir>/<name>.qga}. */
    public Path agentSocket() {
        return dir.resolve(name + ".qga");
    }

    /** The data disk's qcow2 file (locked by QEMU while it runs). */
    public Path diskFile() {
        return dir.resolve(name + "-" + DISK + ".qcow2");
    }

    /** QEMU's own output. */
    public Path log() {
        return dir.resolve(name + ".log");
    }

    public boolean running() {
        return process.isAlive();
    }

    /**
     * Runs {@code /bin/sh -c script} in the guest (busybox; the data disk is on {@code /mnt}) and
     * waits for it to exit.
     */
    public Exec sh(String script, Duration deadline) {
        long end = System.nanoTime() + deadline.toNanos();
        ObjectNode args = JSON.createObjectNode().put("path", "/bin/sh").put("capture-output", true);
        args.putArray("arg").add("-c").add(script);
        long pid = agent("guest-exec", args, deadline).path("pid").asLong();
        while (true) {
            JsonNode st = agent("guest-exec-status", JSON.createObjectNode().put("pid", pid), deadline);
            if (st.path("exited").asBoolean()) {
                return new Exec(
                        st.path("exitcode").asInt(-1), base64(st.path("out-data")), base64(st.path("err-data")));
            }
            if (System.nanoTime() > end) {
                throw new IllegalStateException(
                        "'" + script + "' in guest " + name + " did not exit within " + deadline);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
    }

    /**
     * Starts {@code /bin/sh -c script} in the guest without waiting (for a writer loop); stop it
     * with another {@link #sh} (for example {@code kill}).
     *
     * @return the guest pid
     */
    public long spawn(String script) {
        ObjectNode args = JSON.createObjectNode().put("path", "/bin/sh");
        args.putArray("arg").add("-c").add(script);
        return agent("guest-exec", args, Duration.ofSeconds(30)).path("pid").asLong();
    }

    /** Like {@link #sh} but fails unless the script exits 0; returns its stdout. */
    public String shOk(String script, Duration deadline) {
        Exec e = sh(script, deadline);
        if (e.exitCode() != 0) {
            throw new IllegalStateException("'" + script + "' in guest " + name + " exited " + e.exitCode()
                    + "; stderr: " + e.stderr() + "; stdout: " + e.stdout());
        }
        return e.stdout();
    }

    /** The guest agent's {@code guest-fsfreeze-status}: {@code "thawed"} or {@code "frozen"}. */
    public String freezeStatus() {
        return agent("guest-fsfreeze-status", null, Duration.ofSeconds(30)).asText();
    }

    /** Thaws the guest's file systems (a test's cleanup when the system under test left it frozen). */
    public void thaw() {
        agent("guest-fsfreeze-thaw", null, Duration.ofSeconds(30));
    }

    /**
     * One guest agent command on a fresh connection, after {@code guest-sync-delimited} (which
     * drops replies meant for earlier clients); returns its {@code return} value.
     */
    public synchronized JsonNode agent(String command, ObjectNode args, Duration deadline) {
        long syncId = ThreadLocalRandom.current().nextLong(1, Integer.MAX_VALUE);
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(agentSocket()));
            ScheduledFuture<?> alarm = TIMER.schedule(
                    () -> {
                        try {
                            ch.close(); // unblocks the read below
                        } catch (IOException e) {
                            // the call fails with the closed channel either way
                        }
                    },
                    deadline.toMillis(),
                    TimeUnit.MILLISECONDS);
            try {
                OutputStream out = Channels.newOutputStream(ch);
                InputStream in = Channels.newInputStream(ch);
                send(
                        out,
                        JSON.createObjectNode()
                                .put("execute", "guest-sync-delimited")
                                .set("arguments", JSON.createObjectNode().put("id", syncId)));
                JsonNode r;
                do {
                    r = readReply(in);
                } while (r.path("return").asLong(-1) != syncId);
                ObjectNode cmd = JSON.createObjectNode().put("execute", command);
                if (args != null) {
                    cmd.set("arguments", args);
                }
                send(out, cmd);
                r = readReply(in);
                if (r.has("error")) {
                    throw new IllegalStateException(
                            "guest agent of " + name + ": " + command + " failed: " + r.get("error"));
                }
                return r.path("return");
            } finally {
                alarm.cancel(false);
            }
        } catch (IOException e) {
            throw new IllegalStateException(
                    "guest agent of " + name + " on " + agentSocket() + " did not answer " + command + " within "
                            + deadline + ": " + e,
                    e);
        }
    }

    private static void send(OutputStream out, JsonNode msg) throws IOException {
        out.write((JSON.writeValueAsString(msg) + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static JsonNode readReply(InputStream in) throws IOException {
        while (true) {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            int c;
            while ((c = in.read()) != '\n') {
                if (c < 0) {
                    throw new IOException("the guest agent's socket was closed");
                }
                if (c != 0xFF) { // qemu-ga puts 0xFF before the reply to guest-sync-delimited
                    line.write(c);
                }
            }
            String s = line.toString(StandardCharsets.UTF_8).trim();
            if (!s.isEmpty()) {
                return JSON.readTree(s);
            }
        }
    }

    private static String base64(JsonNode n) {
        return n.isTextual() ? new String(Base64.getDecoder().decode(n.asText()), StandardCharsets.UTF_8) : "";
    }

    private static String tail(Path file) {
        return CheckGuest.tail(file);
    }

    private static void run(Duration timeout, String... cmd) {
        ExternalCommand.of(List.of(cmd))
                .timeout(timeout)
                .mergeStderr()
                .ifMissing("see deploy/install-deps.sh")
                .run();
    }

    /** Stops QEMU with SIGTERM (it closes its images cleanly), SIGKILL after 30 s. */
    @Override
    public void close() {
        try {
            process.stop(Duration.ofSeconds(30));
        } finally {
            LIVE.remove(process.process());
        }
    }

    @Override
    public String toString() {
        return "TinyGuest[" + name + " in " + dir + (running() ? ", pid " + process.pid() : ", stopped") + "]";
    }
}
