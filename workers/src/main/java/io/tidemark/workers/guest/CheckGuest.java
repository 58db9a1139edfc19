package io.tidemark.workers.guest;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.hypervisor.Accelerators;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.workers.qga.QgaGuestAgent;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An isolated, throwaway QEMU guest (TCG, no network, no display) booted from a tiny-guest style
 * kernel directory, for checking restored disks: it boots, its init mounts the first disk on {@code
 * /mnt} and starts qemu-guest-agent, and the caller then reaches the agent.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>A kernel directory holds {@code vmlinuz} and {@code initrd.gz} ({@code
 *       deploy/guest/build-tiny-guest.sh DIR} makes one); {@link Kernel#in} checks both exist.
 *   <li>Disks are attached as virtio-blk in the given order ({@code /dev/vda}, {@code /dev/vdb},
 *       …) with the block node and device id {@link Disk#id()}. The caller passes what QEMU may
 *       write to: {@link #overlay} makes a qcow2 copy-on-write overlay on top of a restored image,
 *       so the guest never writes the only copy.
 *   <li>Files in {@code dir}: {@code <name>.qga} (the agent's socket), {@code <name>.qmp}, {@code
 *       <name>.console} (serial console) and {@code <name>.log} (QEMU's output). Keep {@code dir}
 *       short: Unix socket paths are limited to about 107 bytes.
 *   <li>{@link #close()} stops QEMU (SIGTERM, SIGKILL after 30 s); it never leaves it running.
 * </ul>
 */
public final class CheckGuest implements AutoCloseable {

    /** The guest's memory, MiB. */
    public static final int MEMORY_MIB = 256;

    private final String name;
    private final Path dir;
    private final ExternalCommand.Running process;
    private final QgaGuestAgent agent;

    /** A tiny-guest kernel and initramfs. */
    public record Kernel(Path vmlinuz, Path initrd) {

        /** The {@code vmlinuz} and {@code initrd.gz} in {@code dir}; a {@link PermanentException} if either is missing. */
        public static Kernel in(Path dir) {
            Path k = dir.resolve("vmlinuz");
            Path i = dir.resolve("initrd.gz");
            for (Path p : List.of(k, i)) {
                if (!Files.isRegularFile(p)) {
                    throw new PermanentException("no " + p.getFileName() + " in the guest kernel directory " + dir
                            + "; build one with deploy/guest/build-tiny-guest.sh " + dir);
                }
            }
            return new Kernel(k, i);
        }
    }

    /** A disk to attach: its node/device id, its file and that file's format ({@code raw}, {@code qcow2}). */
    public record Disk(String id, Path file, String format) {}

    private CheckGuest(String name, Path dir, ExternalCommand.Running process) {
        this.name = name;
        this.dir = dir;
        this.process = process;
        this.agent = new QgaGuestAgent(name, dir.resolve(name + ".qga"));
    }

    /**
     * The QEMU command line of the guest; shared by {@link #start} and the tests' tiny-guest
     * fixture's layout (agent on {@code <name>.qga}, QMP on {@code <name>.qmp}).
     */
    public static List<String> commandLine(Kernel kernel, String name, Path dir, List<Disk> disks) {
        List<String> cmd = new ArrayList<>(List.of(
                "qemu-system-x86_64",
                "-machine",
                "q35",
                "-cpu",
                "max",
                "-m",
                Integer.toString(MEMORY_MIB),
                "-smp",
                "1",
                "-nodefaults",
                "-display",
                "none",
                "-name",
                name,
                "-no-reboot",
                "-kernel",
                kernel.vmlinuz().toString(),
                "-initrd",
                kernel.initrd().toString(),
                "-append",
                "console=ttyS0 panic=-1 quiet",
                "-serial",
                "file:" + dir.resolve(name + ".console")));
        // KVM where this host runs KVM guests, else TCG (Accelerators says why); never hard-coded
        cmd.addAll(3, Accelerators.qemuArgs("auto"));
        for (Disk d : disks) {
            cmd.addAll(List.of(
                    "-blockdev",
                    "driver=file,filename=" + escape(d.file()) + ",node-name=" + d.id() + "-file",
                    "-blockdev",
                    "driver=" + d.format() + ",file=" + d.id() + "-file,node-name=" + d.id() + "-fmt",
                    "-device",
                    "virtio-blk-pci,drive=" + d.id() + "-fmt,id=" + d.id()));
        }
        cmd.addAll(List.of(
                "-device",
                "virtio-serial-pci,id=vser0",
                "-chardev",
                "socket,path=" + escape(dir.resolve(name + ".qga")) + ",server=on,wait=off,id=qga0",
                "-device",
                "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0",
                "-qmp",
                "unix:" + escape(dir.resolve(name + ".qmp")) + ",server=on,wait=off"));
        return cmd;
    }

    /**
     * Creates a qcow2 overlay {@code overlay} whose backing file is {@code image} (format {@code
     * backingFormat}), so a guest can write without touching the image.
     */
    public static Path overlay(Path image, String backingFormat, Path overlay) {
        run(
                Duration.ofMinutes(2),
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                backingFormat,
                "-b",
                image.toAbsolutePath().toString(),
                overlay.toString());
        return overlay;
    }

    /** Starts QEMU; it boots in the background ({@link #awaitAgent} waits for it). */
    public static CheckGuest start(Kernel kernel, String name, Path dir, List<Disk> disks) {
        List<String> cmd = commandLine(kernel, name, dir, disks);
        ExternalCommand.Running p = ExternalCommand.of(cmd)
                .ifMissing("install qemu-system-x86 (deploy/install-deps.sh) for the check guest " + name)
                .start(dir.resolve(name + ".log"));
        return new CheckGuest(name, dir, p);
    }

    /**
     * Waits until the guest agent answers {@code guest-ping}.
     *
     * @return how long that took from this call
     * @throws RetriableException if it did not answer within {@code deadline} (with the console's
     *     tail), or QEMU exited
     */
    public Duration awaitAgent(Duration deadline) {
        long t0 = System.nanoTime();
        long end = t0 + deadline.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new RetriableException("QEMU of the check guest " + name + " exited with "
                        + process.process().exitValue() + " while booting; log: " + tail(dir.resolve(name + ".log"))
                        + "; console: " + console());
            }
            long left = end - System.nanoTime();
            if (left <= 0) {
                throw new RetriableException("the guest agent of the check guest " + name + " did not answer within "
                        + deadline + "; console: " + console());
            }
            try {
                if (!Files.exists(agent.socket())) {
                    throw new RetriableException("no agent socket yet");
                }
                agent.ping(Duration.ofNanos(Math.min(left, TimeUnit.SECONDS.toNanos(5))));
                return Duration.ofNanos(System.nanoTime() - t0);
            } catch (RetriableException e) {
                // not up yet: QEMU creates the socket at once, the agent starts late in the boot
                try {
                    Thread.sleep(200);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted while booting the check guest " + name, ie);
                }
            }
        }
    }

    /** The guest's agent (valid once {@link #awaitAgent} returned). */
    public QgaGuestAgent agent() {
        return agent;
    }

    /** The last 4000 bytes of the serial console. */
    public String console() {
        return tail(dir.resolve(name + ".console"));
    }

    /** The last 4000 bytes of {@code file}, "" if it does not exist. */
    static String tail(Path file) {
        try {
            if (!Files.exists(file)) {
                return "";
            }
            byte[] b = Files.readAllBytes(file);
            int from = Math.max(0, b.length - 4000);
            return new String(b, from, b.length - from, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e.getMessage() + ")";
        }
    }

    private static String escape(Path p) {
        return p.toString().replace(",", ",,");
    }

    private static void run(Duration timeout, String... cmd) {
        ExternalCommand.of(List.of(cmd))
                .timeout(timeout)
                .mergeStderr()
                .ifMissing("install qemu-utils")
                .run();
    }

    /** Stops QEMU: SIGTERM, SIGKILL after 30 s. */
    @Override
    public void close() {
        process.stop(Duration.ofSeconds(30));
    }
}
