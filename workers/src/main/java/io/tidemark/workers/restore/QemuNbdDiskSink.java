package io.tidemark.workers.restore;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.repository.BackgroundWriteback;
import io.tidemark.repository.DiskSink;
import io.tidemark.workers.nbd.NbdClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A disk image that QEMU's block layer writes: a qcow2 file, or a Ceph RBD image through QEMU's
 * {@code rbd} driver (Debian package {@code qemu-block-extra}). {@code qemu-img create} makes the
 * image, {@code qemu-nbd} exports it on a private Unix socket, and the restore writes only the
 * non-zero chunks with {@code NBD_CMD_WRITE}, so a qcow2 file stays sparse and an RBD image thin; no
 * temporary raw copy is made.
 *
 * <p>A qcow2 file is written as {@code FILE.partial} and renamed on {@link #commit}; a failed restore
 * deletes it. An RBD image cannot be renamed through QEMU, so it is written in place under its final
 * name, which must not exist yet; a failed restore leaves it, and {@link #close} logs the {@code rbd
 * rm} command that removes it.
 *
 * <p>Every {@link BackgroundWriteback#DEFAULT_EVERY_BYTES} written, a background NBD flush makes
 * qemu-nbd write back what it has while the restore goes on, so the commit's flush only has the tail
 * left.
 */
public final class QemuNbdDiskSink implements DiskSink {

    private static final Logger log = LoggerFactory.getLogger(QemuNbdDiskSink.class);
    private static final String EXPORT = "restore";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(120);

    private final String format;
    private final String describe;
    private final String image; // as QEMU names it; may hold options with secrets
    private final Path partial; // qcow2 only
    private final Path out; // qcow2 only
    private final Path work;
    private final ExternalCommand.Running server;
    private final NbdClient client;
    private final BackgroundWriteback writeback;
    private boolean committed;

    private QemuNbdDiskSink(
            String format,
            String describe,
            String image,
            Path partial,
            Path out,
            Path work,
            ExternalCommand.Running server,
            NbdClient client) {
        this.format = format;
        this.describe = describe;
        this.image = image;
        this.partial = partial;
        this.out = out;
        this.work = work;
        this.server = server;
        this.client = client;
        this.writeback = new BackgroundWriteback(describe, BackgroundWriteback.DEFAULT_EVERY_BYTES, client::flush);
    }

    /** A new qcow2 file {@code out} of virtual size {@code size}, written as {@code out.partial}. */
    public static QemuNbdDiskSink qcow2(Path out, long size) {
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        try {
            Files.deleteIfExists(partial);
        } catch (IOException e) {
            throw new PermanentException("cannot remove the stale " + partial + ": " + e.getMessage(), e);
        }
        String what = out.toString();
        run(ExternalCommand.of("qemu-img", "create", "-q", "-f", "qcow2", partial.toString(), Long.toString(size)));
        try {
            return open("qcow2", what, partial, out, "qcow2", partial.toString());
        } catch (RuntimeException e) {
            deleteQuietly(partial);
            throw e;
        }
    }

    /**
     * A new Ceph RBD image of {@code size} bytes.
     *
     * @param spec QEMU's name of the image: {@code rbd:POOL/IMAGE} with optional {@code
     *     :conf=/etc/ceph/ceph.conf:id=USER} (any librados option); the image must not exist
     */
    public static QemuNbdDiskSink rbd(String spec, long size) {
        if (!spec.startsWith("rbd:") || !spec.contains("/")) {
            throw new PermanentException("'" + redact(spec) + "' is not an RBD image: write rbd:POOL/IMAGE, optionally"
                    + " followed by :conf=/etc/ceph/ceph.conf:id=USER");
        }
        String what = redact(spec);
        run(ExternalCommand.of("qemu-img", "create", "-q", "-f", "raw")
                .secret(spec, what)
                .arg(Long.toString(size)));
        return open("rbd", what, null, null, "raw", spec);
    }

    /**
     * {@code rbd:pool/image} without its options (which may hold a key): what messages, logs and
     * {@code --json} show. Prefer a keyring named in the conf file to {@code :key=} (command lines
     * are visible to other users of the host).
     */
    static String redact(String spec) {
        int colon = spec.indexOf(':', "rbd:".length());
        return colon < 0 ? spec : spec.substring(0, colon);
    }

    private static QemuNbdDiskSink open(
            String format, String what, Path partial, Path out, String imageFormat, String image) {
        Path work;
        try {
            // a short path: a Unix socket's path is limited to 107 bytes
            work = Files.createTempDirectory(Path.of(System.getProperty("java.io.tmpdir")), "tm-restore-");
        } catch (IOException e) {
            throw new PermanentException("cannot create a scratch directory for qemu-nbd: " + e.getMessage(), e);
        }
        Path socket = work.resolve("nbd.sock");
        Path logFile = work.resolve("qemu-nbd.log");
        ExternalCommand.Running server = null;
        try {
            server = ExternalCommand.of(
                            "qemu-nbd",
                            "--socket=" + socket,
                            "--export-name=" + EXPORT,
                            "--format=" + imageFormat,
                            "--cache=writeback",
                            "--shared=1")
                    .secret(image, what)
                    .ifMissing("is qemu-utils installed (deploy/install-deps.sh)?")
                    .start(logFile);
            long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
            while (!Files.exists(socket)) {
                if (!server.isAlive()) {
                    throw new PermanentException("qemu-nbd could not open " + what + " (exit "
                            + server.process().exitValue()
                            + "): " + tail(logFile).replace(image, what));
                }
                if (System.nanoTime() > deadline) {
                    throw new RetriableException("qemu-nbd did not open its socket for " + what + " within "
                            + START_TIMEOUT.toSeconds() + " s: " + tail(logFile).replace(image, what));
                }
                server.process().waitFor(20, TimeUnit.MILLISECONDS);
            }
            NbdClient client = NbdClient.connect(socket, EXPORT, List.of());
            return new QemuNbdDiskSink(format, what, image, partial, out, work, server, client);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop(server);
            deleteTree(work);
            throw new RetriableException("interrupted while starting qemu-nbd for " + what, e);
        } catch (RuntimeException e) {
            stop(server);
            deleteTree(work);
            throw e;
        }
    }

    @Override
    public void write(long offset, byte[] data, int length) {
        client.write(offset, data, length);
        writeback.written(length);
    }

    /** Background flushes completed so far. */
    long writebacks() {
        return writeback.flushes();
    }

    @Override
    public void commit() {
        writeback.finish(true);
        client.flush();
        client.close();
        try {
            if (!server.process().waitFor(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                throw new RetriableException(
                        "qemu-nbd did not finish writing " + describe + " within " + STOP_TIMEOUT.toSeconds() + " s");
            }
            if (server.process().exitValue() != 0) {
                throw new PermanentException("qemu-nbd failed writing " + describe + " (exit "
                        + server.process().exitValue()
                        + "): " + tail(work.resolve("qemu-nbd.log")).replace(image, describe));
            }
            if (partial != null) {
                Files.move(partial, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
            committed = true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while qemu-nbd closed " + describe, e);
        } catch (IOException e) {
            throw new PermanentException("cannot complete " + out + " from " + partial + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return describe;
    }

    @Override
    public String format() {
        return format;
    }

    @Override
    public void close() {
        client.close(); // a background flush still running fails at once: the image is being dropped
        writeback.finish(false);
        stop(server);
        deleteTree(work);
        if (!committed) {
            if (partial != null) {
                deleteQuietly(partial);
            } else {
                log.warn(
                        "the restore into {} did not complete; the image holds partial data: remove it with `rbd rm {}`",
                        describe,
                        describe.substring("rbd:".length()));
            }
        }
    }

    private static void run(ExternalCommand create) {
        create.timeout(STOP_TIMEOUT).mergeStderr().ifMissing("is qemu-utils installed (deploy/install-deps.sh)?");
        ExternalCommand.Result r = create.runForExit();
        if (r.exitCode() != 0) {
            throw new PermanentException(create.failure(r)
                    + (r.stdout().contains("Unknown protocol 'rbd'")
                            ? " (install Debian's qemu-block-extra for RBD)"
                            : ""));
        }
    }

    private static void stop(ExternalCommand.Running p) {
        if (p != null) {
            p.stop(Duration.ofSeconds(10));
        }
    }

    private static String tail(Path logFile) {
        try {
            List<String> lines = Files.readAllLines(logFile);
            return String.join(" / ", lines.subList(Math.max(0, lines.size() - 5), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static void deleteQuietly(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            log.warn("cannot remove the incomplete {}: {}", file, e.toString());
        }
    }

    private static void deleteTree(Path dir) {
        if (dir == null) {
            return;
        }
        try {
            FileTrees.delete(dir);
        } catch (IOException e) {
            log.debug("cannot remove {}: {}", dir, e.toString());
        }
    }
}
