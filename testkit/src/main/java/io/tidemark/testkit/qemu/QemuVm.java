package io.tidemark.testkit.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.testkit.contract.HypervisorContract;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Pattern;
import java.util.stream.StreamSupport;

/**
 * A real QEMU "VM" for tests, with no guest OS: q35 under TCG, {@code -m 64}, one {@code
 * virtio-scsi-pci} controller and one {@code scsi-hd,share-rw=on} per disk, each disk a fresh qcow2
 * (v3) that this fixture creates. Guest writes go through the device's own block backend (HMP
 * {@code qemu-io -d <id>}), so they mark dirty bitmaps exactly as a guest would, and the matching
 * {@link DiskModel} is updated, so tests always know the expected bytes.
 *
 * <p>Files in {@code dir}: {@code <vm>.qmp} (the QMP socket for the system under test, which may
 * hold it open), {@code <vm>.ctl} (this fixture's own monitor), {@code <vm>-<disk>.qcow2}, and
 * {@code <vm>.log} (QEMU's stdout and stderr, line-buffered, appended across restarts).
 *
 * <p>Keep {@code dir} short: Unix socket paths are limited to about 107 bytes. QEMU is always
 * stopped by {@link #close()}, and killed by a JVM shutdown hook if a test forgot to.
 */
public final class QemuVm implements HypervisorContract.GuestVm {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(20);
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(20);
    private static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();
    private static final Pattern FAILURE = Pattern.compile("(?m)^(?!qemu-system-x86_64:).*(failed|Error).*$");

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroyForcibly), "qemu-reaper"));
    }

    private final Path dir;
    private final String name;
    private final Map<String, Path> files = new LinkedHashMap<>();
    private final Map<String, String> formats = new LinkedHashMap<>();
    private final Map<String, DiskModel> models = new LinkedHashMap<>();
    private final Path log;
    private Process process;
    private MonitorConnection monitor;

    private QemuVm(Path dir, String name) {
        this.dir = dir.toAbsolutePath();
        this.name = name;
        this.log = this.dir.resolve(name + ".log");
    }

    /**
     * Creates one qcow2 per size ({@code sd0}, {@code sd1}, ...), starts QEMU paused, waits for its
     * monitor, then lets it run ({@code cont}).
     *
     * @param diskSizes virtual sizes in bytes, multiples of 512, at most 2 GiB (tests: 16–64 MiB)
     */
    public static QemuVm start(Path dir, String vmName, long... diskSizes) {
        if (diskSizes.length == 0) {
            throw new IllegalArgumentException("a QemuVm needs at least one disk");
        }
        QemuVm vm = new QemuVm(dir, vmName);
        for (int i = 0; i < diskSizes.length; i++) {
            if (diskSizes[i] <= 0 || diskSizes[i] % 512 != 0) {
                throw new IllegalArgumentException("disk size " + diskSizes[i] + " is not a positive multiple of 512");
            }
            String id = "sd" + i;
            Path file = vm.dir.resolve(vmName + "-" + id + ".qcow2");
            run("qemu-img", "create", "-q", "-f", "qcow2", file.toString(), Long.toString(diskSizes[i]));
            vm.files.put(id, file);
            vm.models.put(id, new DiskModel(diskSizes[i]));
        }
        vm.launch();
        return vm;
    }

    private void launch() {
        List<String> cmd = new ArrayList<>(List.of(
                "stdbuf",
                "-oL",
                "-eL", // qemu-io prints its results to stdout; see them at once
                "qemu-system-x86_64",
                "-machine",
                "q35",
                "-accel",
                "tcg",
                "-display",
                "none",
                "-nodefaults",
                "-m",
                "64",
                "-S",
                "-name",
                name,
                "-device",
                "virtio-scsi-pci,id=scsi0"));
        for (Map.Entry<String, Path> d : files.entrySet()) {
            String id = d.getKey();
            cmd.addAll(List.of(
                    "-blockdev", "driver=file,filename=" + escape(d.getValue()) + ",node-name=" + id + "-file",
                    "-blockdev",
                            "driver=" + formats.getOrDefault(id, "qcow2") + ",file=" + id + "-file,node-name="
                                    + nodeName(id),
                    "-device", "scsi-hd,drive=" + nodeName(id) + ",id=" + id + ",share-rw=on"));
        }
        cmd.addAll(List.of(
                "-qmp", "unix:" + escape(qmpSocket()) + ",server=on,wait=off",
                "-qmp", "unix:" + escape(controlSocket()) + ",server=on,wait=off"));
        process = ExternalCommand.of(cmd)
                .ifMissing("install qemu-system-x86")
                .start(log)
                .process();
        LIVE.add(process);
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (true) {
            if (!process.isAlive()) {
                LIVE.remove(process);
                throw new IllegalStateException(
                        "QEMU for " + name + " exited with " + process.exitValue() + " at start; log:\n" + logTail());
            }
            try {
                monitor = MonitorConnection.open(controlSocket(), COMMAND_TIMEOUT);
                break;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    kill();
                    throw new IllegalStateException(
                            "QEMU for " + name + " did not open " + controlSocket() + " within " + START_TIMEOUT, e);
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
        }
        monitor.execute("cont", null);
    }

    /**
     * Creates a disk image of another kind ({@code raw}, or {@code qcow2} with {@code -o} options
     * such as {@code compat=0.10} for a qcow2 v2) and hot-plugs it as guest device {@code diskId},
     * with node {@link #nodeName}. It is written, modelled and restarted like the other disks.
     *
     * @param createOptions {@code qemu-img create -o} options, empty for none
     */
    public void attach(String diskId, long size, String format, String createOptions) {
        if (files.containsKey(diskId)) {
            throw new IllegalArgumentException("disk '" + diskId + "' already exists");
        }
        Path file = dir.resolve(name + "-" + diskId + "." + format);
        List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", format));
        if (!createOptions.isEmpty()) {
            create.addAll(List.of("-o", createOptions));
        }
        create.addAll(List.of(file.toString(), Long.toString(size)));
        run(create.toArray(String[]::new));
        ObjectNode fileNode =
                args().put("driver", "file").put("filename", file.toString()).put("node-name", diskId + "-file");
        qmp("blockdev-add", fileNode);
        qmp(
                "blockdev-add",
                args().put("driver", format).put("file", diskId + "-file").put("node-name", nodeName(diskId)));
        qmp(
                "device_add",
                args().put("driver", "scsi-hd")
                        .put("drive", nodeName(diskId))
                        .put("id", diskId)
                        .put("share-rw", true));
        files.put(diskId, file);
        formats.put(diskId, format);
        models.put(diskId, new DiskModel(size));
    }

    private static String escape(Path p) {
        return p.toString().replace(",", ",,");
    }

    public String name() {
        return name;
    }

    /** The QMP socket for the system under test: {@code <dir>/<vm>.qmp}. */
    public Path qmpSocket() {
        return dir.resolve(name + ".qmp");
    }

    /** This fixture's own QMP socket; do not connect to it. */
    public Path controlSocket() {
        return dir.resolve(name + ".ctl");
    }

    /** QEMU's stdout and stderr. */
    public Path log() {
        return log;
    }

    /** The guest device ids, which are also the disk names a hypervisor reports: {@code sd0}, ... */
    public List<String> diskIds() {
        return List.copyOf(files.keySet());
    }

    /** The qcow2 file of a disk. */
    public Path diskFile(String diskId) {
        return require(files, diskId);
    }

    /** The block node (format layer) the device is attached to. */
    public String nodeName(String diskId) {
        return diskId + "-fmt";
    }

    /** The expected content of a disk, kept in step by {@link #write} and {@link #writeZeroes}. */
    /** The disk ids, as {@link #diskIds()}: the names QMP reports (the guest device ids). */
    @Override
    public List<String> disks() {
        return diskIds();
    }

    public DiskModel model(String diskId) {
        return require(models, diskId);
    }

    public boolean running() {
        return process != null && process.isAlive();
    }

    public long pid() {
        return process.pid();
    }

    /**
     * Stops the QEMU process with SIGSTOP, as a hung QEMU behaves: its sockets (monitors, NBD) accept
     * nothing and answer nothing until {@link #resumeProcess()}. Do not use this VM's other methods
     * meanwhile: they would wait for QEMU.
     */
    public void suspendProcess() {
        signal("STOP");
    }

    /** Lets a process stopped by {@link #suspendProcess()} run again (SIGCONT). */
    public void resumeProcess() {
        signal("CONT");
    }

    private void signal(String name) {
        run("kill", "-" + name, Long.toString(process.pid()));
    }

    /** Writes {@code patternByte} through the guest device, like a guest, and updates the model. */
    public void write(String diskId, long offset, int length, int patternByte) {
        qemuIo(diskId, String.format("write -P 0x%02x %d %d", patternByte & 0xff, offset, length), offset, length);
        model(diskId).write(offset, length, patternByte);
    }

    /** Writes zeroes through the guest device ({@code write -z}) and updates the model. */
    public void writeZeroes(String diskId, long offset, int length) {
        qemuIo(diskId, String.format("write -z %d %d", offset, length), offset, length);
        model(diskId).writeZeroes(offset, length);
    }

    /**
     * HMP {@code qemu-io} always replies {@code ""}; its result goes to QEMU's stdout. So this waits
     * for the "wrote" line in the log and fails on any error line.
     */
    private void qemuIo(String diskId, String io, long offset, int length) {
        require(files, diskId);
        qemuIo(diskId, io, "wrote " + length + "/" + length + " bytes at offset " + offset);
    }

    /**
     * Runs HMP {@code qemu-io -d DEVICE "COMMAND"} on any guest device, also one a test hot-plugged,
     * and waits until QEMU prints {@code expect}; an error line (for example {@code read failed:
     * Input/output error}) fails it. Models are not updated.
     */
    public void qemuIo(String diskId, String io, String expect) {
        long mark = logSize();
        JsonNode reply = monitor()
                .execute(
                        "human-monitor-command",
                        MonitorConnection.args().put("command-line", "qemu-io -d " + diskId + " \"" + io + "\""));
        if (!reply.asText("").isEmpty()) {
            throw new IllegalStateException("qemu-io '" + io + "' on " + name + "/" + diskId + ": " + reply.asText());
        }
        long deadline = System.nanoTime() + COMMAND_TIMEOUT.toNanos();
        while (true) {
            String out = logFrom(mark);
            var failure = FAILURE.matcher(out);
            if (failure.find()) {
                throw new IllegalStateException(
                        "qemu-io '" + io + "' on " + name + "/" + diskId + " failed: " + failure.group());
            }
            if (out.contains(expect)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("qemu-io '" + io + "' on " + name + "/" + diskId + " printed no '"
                        + expect + "' within " + COMMAND_TIMEOUT + "; log since the command:\n" + out);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
        }
    }

    /** Runs a QMP command on the fixture's own monitor and returns its {@code return} value. */
    public JsonNode qmp(String command, ObjectNode args) {
        return monitor().execute(command, args);
    }

    /** A fresh argument object for {@link #qmp}. */
    public static ObjectNode args() {
        return MonitorConnection.args();
    }

    /**
     * The {@code query-block} entry of a named dirty bitmap on the node of the guest device {@code
     * diskId} (also a device a test hot-plugged), if it exists.
     */
    public Optional<JsonNode> bitmap(String diskId, String bitmapName) {
        for (JsonNode dev : qmp("query-block", null)) {
            if (dev.path("qdev").asText().equals(diskId)) {
                return StreamSupport.stream(
                                dev.path("inserted").path("dirty-bitmaps").spliterator(), false)
                        .filter(b -> b.path("name").asText("").equals(bitmapName))
                        .findFirst();
            }
        }
        return Optional.empty();
    }

    /** Names of all named bitmaps on the node of the guest device {@code diskId}. */
    public List<String> bitmapNames(String diskId) {
        List<String> out = new ArrayList<>();
        for (JsonNode dev : qmp("query-block", null)) {
            if (dev.path("qdev").asText().equals(diskId)) {
                dev.path("inserted").path("dirty-bitmaps").forEach(b -> {
                    if (b.has("name")) {
                        out.add(b.get("name").asText());
                    }
                });
            }
        }
        return out;
    }

    /** Stops QEMU cleanly ({@code quit}): persistent bitmaps are written to the qcow2 files. */
    public void quit() {
        if (!running()) {
            return;
        }
        try {
            monitor().execute("quit", null);
        } catch (UncheckedIOException e) {
            // QEMU may close the monitor before the reply; the exit below is what counts
        }
        closeMonitor();
        try {
            if (!process.waitFor(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                kill();
                throw new IllegalStateException("QEMU for " + name + " did not quit within " + COMMAND_TIMEOUT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            kill();
            throw new IllegalStateException("interrupted while waiting for QEMU to quit", e);
        } finally {
            LIVE.remove(process);
        }
    }

    /**
     * A host crash after the guest synced its writes: flushes every disk (so the qcow2 metadata that
     * QEMU caches reaches the file and the models stay true), then SIGKILL. Persistent bitmaps
     * loaded from the image stay marked in-use, so the next QEMU reports them inconsistent; bitmaps
     * created since the start were never stored and are gone.
     */
    public void kill() {
        if (running() && monitor != null) {
            for (String id : files.keySet()) {
                monitor.execute(
                        "human-monitor-command",
                        MonitorConnection.args().put("command-line", "qemu-io -d " + id + " \"flush\""));
            }
        }
        closeMonitor();
        if (process == null) {
            return;
        }
        process.destroyForcibly();
        try {
            if (!process.waitFor(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                throw new IllegalStateException("QEMU for " + name + " (pid " + process.pid() + ") survived SIGKILL");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for QEMU to die", e);
        } finally {
            LIVE.remove(process);
        }
    }

    /** Starts QEMU again on the same disk files and sockets ({@link #quit()} first if it runs). */
    public void restart() {
        quit();
        launch();
    }

    private MonitorConnection monitor() {
        if (!running() || monitor == null) {
            throw new IllegalStateException("QEMU for " + name + " is not running");
        }
        return monitor;
    }

    private void closeMonitor() {
        if (monitor != null) {
            monitor.close();
            monitor = null;
        }
    }

    private long logSize() {
        try {
            return Files.exists(log) ? Files.size(log) : 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private String logFrom(long offset) {
        try (SeekableByteChannel ch = Files.newByteChannel(log)) {
            long size = ch.size();
            ByteBuffer buf = ByteBuffer.allocate((int) Math.max(0, Math.min(size - offset, 1 << 20)));
            ch.position(offset);
            while (buf.hasRemaining() && ch.read(buf) > 0) {
                // read on
            }
            return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private String logTail() {
        long size = logSize();
        return logFrom(Math.max(0, size - 4000));
    }

    private static <T> T require(Map<String, T> map, String diskId) {
        T v = map.get(diskId);
        if (v == null) {
            throw new IllegalArgumentException("no disk '" + diskId + "'; disks are " + map.keySet());
        }
        return v;
    }

    private static void run(String... cmd) {
        ExternalCommand.of(List.of(cmd))
                .timeout(Duration.ofSeconds(60))
                .mergeStderr()
                .ifMissing("install qemu-utils")
                .run();
    }

    /** Stops QEMU: cleanly if it answers, else with SIGKILL. Files stay in {@code dir}. */
    @Override
    public void close() {
        try {
            quit();
        } catch (RuntimeException e) {
            kill();
            throw e;
        }
    }

    @Override
    public String toString() {
        return "QemuVm[" + name + " in " + dir + (running() ? ", pid " + process.pid() : ", stopped") + "]";
    }
}
