package io.tidemark.workers.files;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Repository;
import io.tidemark.workers.instant.RestorePointExport;
import io.tidemark.workers.nbd.NbdServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One file system of a restore point mounted read-only on a local directory through FUSE
 * ({@code guestmount --ro} over the point's NBD export), until {@link #close()}.
 *
 * <p>Contract: as {@link PointFiles} for what is fetched and verified; {@link #start} returns once
 * the directory is a mount point (or throws with guestmount's output); {@link #close()} unmounts
 * ({@code guestunmount}), stops guestmount and the NBD server. {@link #awaitUnmounted} returns when
 * someone else unmounted it.
 */
public final class PointMount implements AutoCloseable {

    private final RestorePointExport export;
    private final NbdServer server;
    private final Process guestmount;
    private final Path dir;

    private PointMount(RestorePointExport export, NbdServer server, Process guestmount, Path dir) {
        this.export = export;
        this.server = server;
        this.guestmount = guestmount;
        this.dir = dir;
    }

    /**
     * Mounts file system {@code fs} ({@code sda1}, {@code vg0/lv0}, as {@link PointFiles#fileSystems}
     * names them) of disk {@code disk} of {@code m} on {@code dir}.
     */
    public static PointMount start(
            Repository repo, Manifest m, String disk, String fs, Path dir, Path workDir, PointFiles.Options options) {
        Map<String, String> env = new HashMap<>(GuestFsKernel.environment());
        if (options.forceTcg()) {
            env.put("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
        }
        Path abs = dir.toAbsolutePath();
        if (!Files.isDirectory(abs)) {
            throw new PermanentException(abs + " is not a directory: create the mount point first");
        }
        RestorePointExport export = RestorePointExport.open(repo, m, disk, options.cache());
        NbdServer server = null;
        Process p = null;
        try {
            server = NbdServer.loopback(export, 4);
            Files.createDirectories(workDir);
            Path log = workDir.resolve("guestmount.log");
            ProcessBuilder pb = new ProcessBuilder(List.of(
                    "guestmount",
                    "--no-fork",
                    "--ro",
                    "--format=raw",
                    "-a",
                    server.uri(),
                    "-m",
                    fs.startsWith("/dev/") ? fs : "/dev/" + fs,
                    abs.toString()));
            pb.environment().putAll(env);
            pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            p = pb.start();
            long deadline = System.nanoTime() + options.launchTimeout().toNanos();
            while (!mounted(abs)) {
                if (!p.isAlive()) {
                    throw new PermanentException("guestmount could not mount " + fs + " of restore point " + m.id()
                            + " on " + abs + ": " + Files.readString(log).strip()
                            + " (list the file systems with `tidemark files ls " + m.id() + "`)");
                }
                if (System.nanoTime() > deadline) {
                    throw new RetriableException(
                            "guestmount did not mount " + abs + " within " + options.launchTimeout() + "; see " + log);
                }
                p.waitFor(200, TimeUnit.MILLISECONDS);
            }
            return new PointMount(export, server, p, abs);
        } catch (IOException e) {
            stop(p, abs);
            close(server, export);
            throw new PermanentException(
                    "cannot start guestmount (" + e.getMessage()
                            + "); install libguestfs-tools (deploy/install-deps.sh)",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(p, abs);
            close(server, export);
            throw new RetriableException("interrupted while mounting " + abs, e);
        } catch (RuntimeException e) {
            stop(p, abs);
            close(server, export);
            throw e;
        }
    }

    /** Whether {@code dir} is a mount point now (from /proc/self/mounts). */
    static boolean mounted(Path dir) {
        try {
            String target = " " + dir.toString().replace(" ", "\\040") + " ";
            return Files.readAllLines(Path.of("/proc/self/mounts")).stream().anyMatch(l -> l.contains(target));
        } catch (IOException e) {
            return false;
        }
    }

    public Path dir() {
        return dir;
    }

    /** Plaintext bytes fetched from the repository so far. */
    public long bytesFetched() {
        return export.bytesFetched();
    }

    /** Waits until guestmount ends (the directory was unmounted) or {@code timeout} passes. */
    public boolean awaitUnmounted(Duration timeout) throws InterruptedException {
        return guestmount.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    private static void stop(Process p, Path dir) {
        if (p == null) {
            return;
        }
        if (mounted(dir)) {
            try {
                new ProcessBuilder("guestunmount", dir.toString())
                        .inheritIO()
                        .start()
                        .waitFor(60, TimeUnit.SECONDS);
            } catch (IOException e) {
                // guestunmount is part of libguestfs-tools like guestmount; fall through to the kill
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private static void close(NbdServer server, RestorePointExport export) {
        if (server != null) {
            server.close();
        }
        export.close();
    }

    /** Unmounts and stops serving. */
    @Override
    public void close() {
        stop(guestmount, dir);
        close(server, export);
    }
}
