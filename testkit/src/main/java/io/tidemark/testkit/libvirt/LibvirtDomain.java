package io.tidemark.testkit.libvirt;

import io.tidemark.testkit.contract.HypervisorContract;
import io.tidemark.testkit.qemu.DiskModel;
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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A persistent libvirt domain for tests, started by {@link Libvirtd#startDomain}: {@code <domain
 * type='qemu'>} (TCG), q35, 64 MiB, no OS, no network; qcow2 v3 disks created by this fixture, the
 * first on virtio-blk ({@code vda}), the others on virtio-scsi ({@code sda}, {@code sdb}, ...).
 *
 * <p>Guest writes go through the device's own block backend (HMP {@code qemu-io} through {@code
 * virsh qemu-monitor-command}, recipe §4), so they mark dirty bitmaps exactly as a guest would, and
 * the matching {@link DiskModel} is updated. {@code qemu-io} prints its result to QEMU's stdout,
 * which libvirt writes to {@code log/qemu/<name>.log}; the fixture waits for it there.
 */
public final class LibvirtDomain implements HypervisorContract.GuestVm {

    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);
    private static final Pattern FAILURE = Pattern.compile("(?m)^.*(failed|Error).*$");
    private static final Pattern ALIAS =
            Pattern.compile("<target dev='([^']+)'[^>]*/>.*?<alias name='([^']+)'/>", Pattern.DOTALL);

    private final Libvirtd daemon;
    private final String name;
    private final Map<String, Path> files = new LinkedHashMap<>();
    private final Map<String, DiskModel> models = new LinkedHashMap<>();
    private final Map<String, String> qemuIoDevices = new LinkedHashMap<>();

    private LibvirtDomain(Libvirtd daemon, String name) {
        this.daemon = daemon;
        this.name = name;
    }

    static LibvirtDomain start(Libvirtd daemon, String name, long... diskSizes) {
        if (diskSizes.length == 0) {
            throw new IllegalArgumentException("a domain needs at least one disk");
        }
        LibvirtDomain d = new LibvirtDomain(daemon, name);
        Path disks;
        try {
            disks = Files.createDirectories(daemon.dir().resolve("disks"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        StringBuilder xml = new StringBuilder("<domain type='qemu'><name>")
                .append(name)
                .append("</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>")
                .append("<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>")
                .append("<emulator>/usr/bin/qemu-system-x86_64</emulator>")
                .append("<controller type='scsi' index='0' model='virtio-scsi'/>");
        for (int i = 0; i < diskSizes.length; i++) {
            if (diskSizes[i] <= 0 || diskSizes[i] % 512 != 0) {
                throw new IllegalArgumentException("disk size " + diskSizes[i] + " is not a positive multiple of 512");
            }
            String dev = i == 0 ? "vda" : "sd" + (char) ('a' + i - 1);
            Path file = disks.resolve(name + "-" + dev + ".qcow2");
            Libvirtd.run(
                    List.of(
                            "qemu-img",
                            "create",
                            "-q",
                            "-f",
                            "qcow2",
                            "-o",
                            "compat=1.1",
                            file.toString(),
                            Long.toString(diskSizes[i])),
                    60);
            d.files.put(dev, file);
            d.models.put(dev, new DiskModel(diskSizes[i]));
            xml.append("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='")
                    .append(file)
                    .append("'/><target dev='")
                    .append(dev)
                    .append("' bus='")
                    .append(i == 0 ? "virtio" : "scsi")
                    .append("'/></disk>");
        }
        xml.append("<memballoon model='none'/></devices></domain>");
        Path def = daemon.dir().resolve(name + ".xml");
        try {
            Files.writeString(def, xml);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        daemon.virsh("define", def.toString());
        d.start();
        return d;
    }

    /** Starts the (stopped) domain, running (SeaBIOS finds no boot device and idles). */
    public void start() {
        daemon.virsh("start", name);
        qemuIoDevices.clear();
        Matcher m = ALIAS.matcher(daemon.virsh("dumpxml", name));
        while (m.find()) {
            String alias = m.group(2);
            // virtio-blk has no block backend of its own in qemu-io's sense: use its virtio-backend
            qemuIoDevices.put(m.group(1), alias.startsWith("virtio-disk") ? alias + "/virtio-backend" : alias);
        }
        if (!qemuIoDevices.keySet().containsAll(files.keySet())) {
            throw new IllegalStateException(
                    "domain " + name + ": no device alias for every disk in its live XML: " + qemuIoDevices);
        }
    }

    public String name() {
        return name;
    }

    /** The disk targets: {@code vda}, {@code sda}, ... */
    public List<String> disks() {
        return List.copyOf(files.keySet());
    }

    /** The qcow2 file of a disk. */
    public Path diskFile(String disk) {
        return require(files, disk);
    }

    /** The expected content of a disk. */
    public DiskModel model(String disk) {
        return require(models, disk);
    }

    /** QEMU's log (its stdout and stderr, where {@code qemu-io} reports). */
    public Path log() {
        return daemon.dir().resolve("log").resolve("qemu").resolve(name + ".log");
    }

    /** Writes {@code patternByte} through the guest device, like a guest, and updates the model. */
    public void write(String disk, long offset, int length, int patternByte) {
        qemuIo(disk, String.format("write -P 0x%02x %d %d", patternByte & 0xff, offset, length), offset, length);
        model(disk).write(offset, length, patternByte);
    }

    private void qemuIo(String disk, String io, long offset, int length) {
        String device = require(qemuIoDevices, disk);
        long mark = logSize();
        String expect = "wrote " + length + "/" + length + " bytes at offset " + offset;
        String reply = hmp("qemu-io -d " + device + " \"" + io + "\"");
        if (!reply.isBlank()) {
            throw new IllegalStateException("qemu-io '" + io + "' on " + name + "/" + disk + ": " + reply.strip());
        }
        long deadline = System.nanoTime() + COMMAND_TIMEOUT.toNanos();
        while (true) {
            String out = logFrom(mark);
            Matcher failure = FAILURE.matcher(out);
            if (failure.find()) {
                throw new IllegalStateException(
                        "qemu-io '" + io + "' on " + name + "/" + disk + " failed: " + failure.group());
            }
            if (out.contains(expect)) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("qemu-io '" + io + "' on " + name + "/" + disk + " printed no '"
                        + expect + "' within " + COMMAND_TIMEOUT + "; log since the command:\n" + out);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
        }
    }

    /** Runs an HMP command in the domain's monitor through libvirt. */
    public String hmp(String command) {
        return daemon.virsh("qemu-monitor-command", name, "--hmp", command);
    }

    /**
     * A host crash after the guest synced its writes: flushes every disk, then SIGKILLs QEMU.
     * Persistent bitmaps loaded from the images stay marked in-use, so after {@link #start()} they
     * are inconsistent.
     */
    public void kill() {
        for (String device : qemuIoDevices.values()) {
            hmp("qemu-io -d " + device + " \"flush\"");
        }
        Path pidFile = daemon.dir().resolve("run").resolve("qemu").resolve(name + ".pid");
        long pid;
        try {
            pid = Long.parseLong(Files.readString(pidFile).strip());
        } catch (IOException | NumberFormatException e) {
            throw new IllegalStateException("no QEMU pid for domain " + name + " in " + pidFile, e);
        }
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        long deadline = System.nanoTime() + COMMAND_TIMEOUT.toNanos();
        while (!daemon.virsh("domstate", name).strip().equals("shut off")) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(
                        "libvirt did not see QEMU of " + name + " die within " + COMMAND_TIMEOUT);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    /** A clean stop (QEMU gets SIGTERM and stores persistent bitmaps in the images). */
    public void destroy() {
        daemon.virsh("destroy", name);
    }

    private long logSize() {
        try {
            return Files.exists(log()) ? Files.size(log()) : 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private String logFrom(long offset) {
        try (SeekableByteChannel ch = Files.newByteChannel(log())) {
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

    private static <T> T require(Map<String, T> map, String disk) {
        T v = map.get(disk);
        if (v == null) {
            throw new IllegalArgumentException("no disk '" + disk + "'; disks are " + map.keySet());
        }
        return v;
    }

    /** Stops the domain if it runs and undefines it with its checkpoint metadata; disk files stay. */
    @Override
    public void close() {
        List<RuntimeException> errors = new ArrayList<>();
        try {
            String state = daemon.virsh("domstate", name).strip();
            if (!state.equals("shut off")) {
                destroy();
            }
        } catch (RuntimeException e) {
            errors.add(e);
        }
        try {
            daemon.virsh("undefine", name, "--checkpoints-metadata");
        } catch (RuntimeException e) {
            errors.add(e);
        }
        if (!errors.isEmpty()) {
            RuntimeException e = errors.get(0);
            errors.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
    }

    @Override
    public String toString() {
        return "LibvirtDomain[" + name + " on " + daemon.uri() + "]";
    }
}
