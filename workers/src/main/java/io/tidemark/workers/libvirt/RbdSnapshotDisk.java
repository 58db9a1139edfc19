package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.ChangedRange;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.workers.rbd.RbdChangeTracker;
import io.tidemark.workers.rbd.RbdDisk;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One raw disk on Ceph RBD of a libvirt domain, captured by an RBD snapshot instead of libvirt's
 * backup job (ADR 18, addendum): libvirt's checkpoints refuse {@code rbd} disks, so the snapshot
 * {@code newCheckpoint} of the image <em>is</em> the point in time (taken at the capture's instant,
 * with the domain paused when it has other disks), its bytes are served read-only by a {@code
 * qemu-nbd} of this capture, and its changes since the parent are {@code rbd diff --from-snap since}
 * (fast-diff). After a commit the parent's snapshot is removed and the new one is the next base;
 * without commit the new one is removed. Leftovers of interrupted captures (our snapshots other than
 * {@code since}, {@code qemu-nbd} servers of captures that are over) are removed when the next capture
 * of the disk opens.
 */
final class RbdSnapshotDisk {

    private static final Logger log = LoggerFactory.getLogger(RbdSnapshotDisk.class);
    private static final Duration RBD_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration SERVER_STOP = Duration.ofSeconds(10);

    /** Our servers' sockets: {@code nbd-<tag>-rbd-<disk>.sock}, so a later capture knows leftovers. */
    private static final Pattern OUR_SERVER =
            Pattern.compile("/nbd-([0-9a-z]+\\.[0-9a-z]+\\.[0-9a-z]+)-rbd-[^/]*\\.sock");

    private final String vm;
    private final DomainXml.Disk disk;
    private final RbdDisk rbd;
    private final RbdChangeTracker tracker;
    private final Optional<String> since;
    private final String newCheckpoint;
    private final boolean baseExists;
    private boolean taken;
    private Path socket;
    private Path pidFile;
    private long serverPid = -1;

    private RbdSnapshotDisk(
            String vm,
            DomainXml.Disk disk,
            RbdChangeTracker tracker,
            Optional<String> since,
            String newCheckpoint,
            boolean baseExists) {
        this.vm = vm;
        this.disk = disk;
        this.rbd = disk.rbd().orElseThrow();
        this.tracker = tracker;
        this.since = since;
        this.newCheckpoint = newCheckpoint;
        this.baseExists = baseExists;
    }

    /**
     * Removes our leftover snapshots of the disk's image (prefix {@code leftoverPrefix}, except
     * {@code since}) and learns whether {@code since} is there. Empty when the disk is not a raw RBD
     * disk, or its snapshots cannot be managed (then it is captured by libvirt's job and read whole,
     * as before: snapshots are an optimisation, never a condition of the backup).
     */
    static Optional<RbdSnapshotDisk> open(
            String vm, DomainXml.Disk disk, String leftoverPrefix, Optional<String> since, String newCheckpoint) {
        if (disk.rbd().isEmpty()) {
            return Optional.empty();
        }
        RbdDisk rbd = disk.rbd().get();
        if (!disk.format().isEmpty() && !disk.format().equals("raw")) {
            log.warn(
                    "domain {}: disk {} is {} on RBD image {}; only raw RBD disks are captured by RBD snapshots, so"
                            + " it is read whole",
                    vm,
                    disk.target(),
                    disk.format(),
                    rbd.image());
            return Optional.empty();
        }
        RbdChangeTracker tracker = rbd.tracker(RBD_TIMEOUT);
        try {
            List<String> removed = tracker.reconcile(rbd.image(), leftoverPrefix, since);
            if (!removed.isEmpty()) {
                log.info("domain {}: removed leftover RBD snapshots of {}: {}", vm, rbd.image(), removed);
            }
            boolean base = since.isPresent() && tracker.snapshots(rbd.image()).contains(since.get());
            return Optional.of(new RbdSnapshotDisk(vm, disk, tracker, since, newCheckpoint, base));
        } catch (TidemarkException e) {
            log.warn(
                    "domain {}: disk {} is on RBD image {} but its snapshots cannot be managed, so it is read whole"
                            + " through libvirt: {}",
                    vm,
                    disk.target(),
                    rbd.image(),
                    e.getMessage());
            return Optional.empty();
        }
    }

    /**
     * Takes snapshot {@code newCheckpoint}: the disk's point in time. Call at the capture's instant
     * (the domain paused when the capture has other disks). librbd has QEMU, the image's lock owner,
     * flush and take it, so it holds every write QEMU acknowledged.
     */
    void takeSnapshot() {
        tracker.createSnapshot(rbd.image(), newCheckpoint);
        taken = true;
    }

    String target() {
        return disk.target();
    }

    /** The image spec, for messages. */
    String image() {
        return rbd.image().spec();
    }

    /**
     * Serves the snapshot read-only over NBD on {@code socket} and says what to read: the changed
     * extents since {@code since} when its snapshot is there, the whole disk otherwise (and why).
     */
    DiskExport export(long size, Path socket) {
        Optional<FullReason> full = Optional.empty();
        Optional<List<ChangedRange>> changed = Optional.empty();
        String gone = "RBD snapshot " + (since.map(s -> rbd.image().spec(s)).orElse("")) + " is gone"
                + " (removed outside Tidemark, or the image was replaced)";
        if (since.isEmpty()) {
            full = Optional.of(
                    FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup: there is no parent snapshot"));
        } else if (!baseExists) {
            full = Optional.of(
                    FullReason.of(FullReason.Kind.CHECKPOINT_MISSING, "disk " + disk.target() + ": " + gone));
        } else {
            try {
                Optional<RbdChangeTracker.Changes> c = tracker.changes(rbd.image(), since.get(), newCheckpoint);
                if (c.isEmpty()) {
                    full = Optional.of(
                            FullReason.of(FullReason.Kind.CHECKPOINT_MISSING, "disk " + disk.target() + ": " + gone));
                } else {
                    log.info(
                            "domain {}: {} changed {} bytes since {} ({})",
                            vm,
                            rbd.image(),
                            c.get().bytes(),
                            since.get(),
                            c.get().wholeObjects() ? "whole objects, fast-diff" : "written ranges");
                    changed = Optional.of(c.get().extents().stream()
                            .map(e -> new ChangedRange(e.offset(), e.length()))
                            .toList());
                }
            } catch (TidemarkException e) {
                full = Optional.of(FullReason.of(
                        FullReason.Kind.CHECKPOINT_MISSING,
                        "disk " + disk.target() + ": the RBD diff from "
                                + rbd.image().spec(since.get()) + " failed: " + e.getMessage()));
            }
        }
        serve(socket);
        return new DiskExport(disk.target(), size, socket, disk.target(), Optional.empty(), full, changed);
    }

    /** Starts a read-only {@code qemu-nbd} of the snapshot, detached, and waits until it serves. */
    private void serve(Path socket) {
        this.socket = socket;
        this.pidFile = socket.resolveSibling(socket.getFileName() + ".pid");
        StringBuilder opts = new StringBuilder("driver=raw,file.driver=rbd")
                .append(",file.pool=")
                .append(opt(rbd.image().pool()))
                .append(",file.image=")
                .append(opt(rbd.image().name()))
                .append(",file.snapshot=")
                .append(opt(newCheckpoint));
        rbd.image().namespace().ifPresent(n -> opts.append(",file.namespace=").append(opt(n)));
        rbd.conf().ifPresent(c -> opts.append(",file.conf=").append(opt(c.toString())));
        rbd.user().ifPresent(u -> opts.append(",file.user=").append(opt(u)));
        ExternalCommand.Result r = ExternalCommand.of(
                        "qemu-nbd",
                        "--fork",
                        "--pid-file=" + pidFile,
                        "--read-only",
                        "--persistent",
                        "--shared=0",
                        "--socket=" + socket,
                        "--export-name=" + disk.target(),
                        "--image-opts",
                        opts.toString())
                .timeout(RBD_TIMEOUT)
                .ifMissing("install qemu-utils (qemu-nbd) and qemu-block-extra (QEMU's rbd driver) on this host")
                .runForExit();
        if (r.exitCode() != 0) {
            throw new PermanentException(
                    "qemu-nbd cannot serve RBD snapshot " + rbd.image().spec(newCheckpoint)
                            + " of disk " + disk.target() + " of domain '" + vm + "' (exit " + r.exitCode() + "): "
                            + r.stderr().strip() + "; check that qemu-block-extra is installed and the host reaches the"
                            + " cluster as the disk names it");
        }
        try {
            serverPid = Long.parseLong(Files.readString(pidFile).strip());
        } catch (IOException | NumberFormatException e) {
            throw new PermanentException(
                    "qemu-nbd serving " + rbd.image().spec(newCheckpoint) + " wrote no pid to " + pidFile + ": " + e);
        }
    }

    /** QEMU's option syntax: a comma inside a value is doubled. */
    private static String opt(String value) {
        return value.replace(",", ",,");
    }

    /**
     * Stops this capture's server, if it runs, without waiting for it: a {@code qemu-nbd} over librbd
     * takes about 1.7 s to close its cluster session after SIGTERM (measured here), and nothing of the
     * capture depends on it (the snapshot can be removed while it is still open). One that is still
     * there at the next capture is stopped as a leftover.
     */
    void stopServer() {
        if (serverPid > 0) {
            ProcessHandle.of(serverPid)
                    .filter(p ->
                            p.info().command().map(c -> c.endsWith("qemu-nbd")).orElse(true))
                    .ifPresent(ProcessHandle::destroy);
            serverPid = -1;
        }
        try {
            if (socket != null) {
                Files.deleteIfExists(socket);
            }
            if (pidFile != null) {
                Files.deleteIfExists(pidFile);
            }
        } catch (IOException e) {
            throw new RetriableException("cannot delete " + socket + " of domain '" + vm + "': " + e, e);
        }
    }

    /**
     * After a commit removes the parent's snapshot (the new one is the next base); otherwise the new
     * one (the parent's stays the base). A snapshot that cannot be removed now is a leftover the next
     * capture removes.
     */
    void settle(boolean committed) {
        if (committed) {
            since.ifPresent(this::remove);
        } else if (taken) {
            remove(newCheckpoint);
        }
    }

    private void remove(String snapshot) {
        try {
            tracker.deleteSnapshot(rbd.image(), snapshot);
        } catch (TidemarkException e) {
            log.warn(
                    "domain {}: cannot remove RBD snapshot {} now; the next capture removes it: {}",
                    vm,
                    rbd.image().spec(snapshot),
                    e.getMessage());
        }
    }

    /**
     * Stops the {@code qemu-nbd} servers left by captures that are over (their process died, or the
     * adapter was closed under them): their socket carries a {@link HostScratch} tag.
     *
     * @return how many were stopped
     */
    static int stopLeftoverServers() {
        List<ProcessHandle> leftovers = new ArrayList<>();
        ProcessHandle.allProcesses()
                .filter(p ->
                        p.info().command().map(c -> c.endsWith("/qemu-nbd")).orElse(false))
                .forEach(p -> {
                    for (String a : p.info().arguments().orElse(new String[0])) {
                        Matcher m = OUR_SERVER.matcher(a);
                        if (a.startsWith("--socket=") && m.find() && HostScratch.isLeftover(m.group(1))) {
                            leftovers.add(p);
                        }
                    }
                });
        leftovers.forEach(p -> {
            log.warn("stopping qemu-nbd (pid {}) left by an interrupted capture of an RBD disk", p.pid());
            stop(p);
        });
        return leftovers.size();
    }

    private static void stop(ProcessHandle p) {
        p.destroy();
        try {
            p.onExit().get(SERVER_STOP.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            p.destroyForcibly();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
    }

    /** The socket name of a disk's server: tagged, so that a later capture knows a leftover. */
    static String socketName(String token, String target) {
        return "nbd-" + token + "-rbd-" + target.replace('/', '_') + ".sock";
    }
}
