package io.tidemark.testkit.libvirt;

import io.tidemark.core.files.FileTrees;
import io.tidemark.core.process.ExternalCommand;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A throwaway, isolated, privileged libvirtd from Debian's packages, started by {@code
 * deploy/libvirt/libvirtd-fixture.sh} (recipes/libvirt-postgres.md §2a): it runs in a private mount
 * namespace whose libvirt paths are bind mounts of directories under {@code dir}, so nothing on the
 * host changes and several instances can run at once. QEMU runs as root without cgroups, security
 * driver or virtlogd. Needs root and {@code libvirt-daemon-system} (deploy/install-deps.sh).
 *
 * <p>The first start on a machine probes QEMU's capabilities (~8 s); the cache is then kept in
 * {@code <java.io.tmpdir>/tidemark-libvirt-capabilities} and copied into later instances, which
 * start in a fraction of a second (libvirt re-probes by itself if the QEMU binary or libvirt
 * changed).
 *
 * <p>{@link #close()} destroys every domain, stops the daemon and deletes {@code dir}; a JVM
 * shutdown hook does the same if a test forgot to.
 */
public final class Libvirtd implements AutoCloseable {

    private static final String SCRIPT = "libvirtd-fixture.sh";
    private static final long START_TIMEOUT_SECONDS = 180;
    private static final Path SEED = Path.of(System.getProperty("java.io.tmpdir"), "tidemark-libvirt-capabilities");

    private final Path dir;
    private final Path script;
    private final Thread reaper;
    private boolean closed;

    private Libvirtd(Path dir, Path script) {
        this.dir = dir;
        this.script = script;
        this.reaper = new Thread(this::stop, "libvirtd-reaper");
    }

    /**
     * Starts a daemon whose state lives in {@code dir} (created if needed; keep it short, the
     * control socket path must fit in 107 bytes) and waits until it answers.
     */
    public static Libvirtd start(Path dir) {
        requireInstalled();
        Path root = dir.toAbsolutePath();
        try {
            Files.createDirectories(root);
            Libvirtd d = new Libvirtd(root, extractScript(root));
            boolean cold = !Files.isDirectory(SEED.resolve("qemu"));
            Runtime.getRuntime().addShutdownHook(d.reaper);
            try {
                d.script(START_TIMEOUT_SECONDS, "start", root.toString(), cold ? "" : SEED.toString());
            } catch (RuntimeException e) {
                d.close();
                throw e;
            }
            if (cold) {
                keepSeed(root.resolve("cache"));
            }
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the libvirtd directory " + root, e);
        }
    }

    /** The client URI: {@code qemu:///system?socket=<dir>/sock/libvirt-sock}. */
    public String uri() {
        return "qemu:///system?socket=" + socket();
    }

    /** The daemon's control socket. */
    public Path socket() {
        return dir.resolve("sock").resolve("libvirt-sock");
    }

    /** The directory holding the daemon's state, logs ({@code log/qemu/<domain>.log}) and disks. */
    public Path dir() {
        return dir;
    }

    /**
     * Defines and starts a TCG domain (q35, 64 MiB, no OS, no network) with one fresh qcow2 v3 disk
     * per size: the first on virtio-blk ({@code vda}), the others on virtio-scsi ({@code sda},
     * {@code sdb}, ...).
     */
    public LibvirtDomain startDomain(String name, long... diskSizes) {
        return LibvirtDomain.start(this, name, diskSizes);
    }

    /**
     * Kills libvirtd with SIGKILL, as a crash would, and waits until it is gone; its domains keep
     * running. {@link #restart()} brings it back.
     */
    public void killDaemon() {
        Path pidFile = dir.resolve("libvirtd.pid");
        long pid;
        try {
            pid = Long.parseLong(Files.readString(pidFile).strip());
        } catch (IOException | NumberFormatException e) {
            throw new IllegalStateException("no libvirtd pid in " + pidFile, e);
        }
        ProcessHandle.of(pid).ifPresent(p -> {
            p.destroyForcibly();
            try {
                p.onExit().get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IllegalStateException("libvirtd (pid " + pid + ") survived SIGKILL for 60 s", e);
            }
        });
    }

    /** Starts libvirtd again on the same directory (after {@link #killDaemon()}); it finds its domains. */
    public void restart() {
        script(START_TIMEOUT_SECONDS, "start", dir.toString(), Files.isDirectory(SEED) ? SEED.toString() : "");
    }

    /** Runs {@code virsh -q -c <uri> args...}; returns its standard output or fails with its error. */
    public String virsh(String... args) {
        List<String> cmd = new ArrayList<>(List.of("virsh", "-q", "-c", uri()));
        cmd.addAll(List.of(args));
        return run(cmd, 120);
    }

    static String run(List<String> cmd, long timeoutSeconds) {
        return ExternalCommand.of(cmd)
                .timeout(Duration.ofSeconds(timeoutSeconds))
                .mergeStderr()
                .ifMissing("install libvirt-clients and libvirt-daemon-system (deploy/install-deps.sh)")
                .run()
                .stdout();
    }

    private void script(long timeoutSeconds, String... args) {
        List<String> cmd = new ArrayList<>(List.of("sh", script.toString()));
        cmd.addAll(List.of(args));
        run(cmd, timeoutSeconds);
    }

    private void stop() {
        script(120, "stop", dir.toString());
    }

    /** Destroys the domains, stops the daemon and deletes its directory. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            Runtime.getRuntime().removeShutdownHook(reaper);
        } catch (IllegalStateException e) {
            // the JVM is shutting down: the hook runs anyway
        }
        stop();
        deleteRecursively(dir);
    }

    private static void keepSeed(Path cache) {
        try {
            Path tmp = Files.createTempDirectory(SEED.getParent(), "tidemark-libvirt-seed-");
            try (Stream<Path> files = Files.walk(cache)) {
                for (Path f : files.toList()) {
                    Path to = tmp.resolve(cache.relativize(f).toString());
                    if (Files.isDirectory(f)) {
                        Files.createDirectories(to);
                    } else {
                        Files.copy(f, to, StandardCopyOption.REPLACE_EXISTING);
                    }
                }
            }
            try {
                Files.move(tmp, SEED, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
                deleteRecursively(tmp); // another run was first
            } catch (IOException e) {
                deleteRecursively(tmp);
            }
        } catch (IOException e) {
            // only an optimisation: the next start probes again
        }
    }

    private static void requireInstalled() {
        for (String tool : List.of("/usr/sbin/libvirtd", "/usr/bin/virsh", "/usr/bin/unshare")) {
            if (!Files.isExecutable(Path.of(tool))) {
                throw new IllegalStateException(tool + " is not installed: run deploy/install-deps.sh (as root; it"
                        + " installs libvirt-daemon-system and libvirt-clients from Debian's packages)");
            }
        }
    }

    private static Path extractScript(Path root) throws IOException {
        Path script = root.resolve(SCRIPT);
        try (InputStream in = Libvirtd.class.getResourceAsStream(SCRIPT)) {
            if (in == null) {
                throw new IllegalStateException(SCRIPT + " is missing from the testkit jar; rebuild testkit (its"
                        + " pom copies deploy/libvirt/" + SCRIPT + " into io/tidemark/testkit/libvirt/)");
            }
            Files.copy(in, script, StandardCopyOption.REPLACE_EXISTING);
        }
        return script;
    }

    static void deleteRecursively(Path root) {
        try {
            FileTrees.delete(root);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + root, e);
        }
    }

    @Override
    public String toString() {
        return "Libvirtd[" + uri() + "]";
    }
}
