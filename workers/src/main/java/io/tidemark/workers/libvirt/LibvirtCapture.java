package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.repository.VmDefinition;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.libvirt.Domain;
import org.libvirt.DomainCheckpoint;
import org.libvirt.DomainInfo;
import org.libvirt.Error.ErrorNumber;
import org.libvirt.LibvirtException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One open capture of one domain: a libvirt pull-mode backup job started together with the new
 * checkpoint (recipe §4). {@link #close()} ends the job (libvirt removes the scratch files and the
 * NBD socket) and settles the checkpoints: after {@link #commit()} the old one is deleted, otherwise
 * the new one.
 */
final class LibvirtCapture implements Capture {

    private static final Logger log = LoggerFactory.getLogger(LibvirtCapture.class);

    /** Scratch files of ours start with this, so a job left by a crashed worker can be recognised. */
    static final String SCRATCH_PREFIX = "tm-scratch-";

    /** The name of one of our scratch files inside a backup job's XML (tagged or from before tags). */
    private static final Pattern OUR_SCRATCH = Pattern.compile("/(" + SCRATCH_PREFIX + "[^/'\"<]*)['\"]");

    /** Names this capture's scratch files and socket, so that a later process can tell leftovers. */
    private final String token = HostScratch.newTag();

    private static final int MAX_SOCKET_PATH = 100;
    private static final Pattern BROKEN_DISK = Pattern.compile("for disk '([^']+)'");
    private static final Pattern NOT_PERSISTABLE =
            Pattern.compile("Can't make bitmap '[^']*' persistent in 'libvirt-([0-9]+)-format'");

    private final LibvirtHypervisor hypervisor;
    private final Domain domain;
    private final String vm;
    private final Optional<String> since;
    private final String newCheckpoint;
    private final String leftoverPrefix;
    private final Runnable onClosed;
    private final Map<String, Planned> disks = new LinkedHashMap<>();
    private Path nbdSocket;
    private Path privateSocketDir;
    private boolean sinceExists;
    private boolean begun;
    private final List<RbdSnapshotDisk> rbdDisks = new ArrayList<>();
    private Instant capturedAt;
    private VmDefinition definition;
    private List<DiskExport> exports = List.of();
    private volatile boolean committed;
    private boolean closed;
    private boolean closing; // guarded by this

    /** A disk of the capture: its size and why it is full, if it is. */
    private static final class Planned {
        final DomainXml.Disk disk;
        final long size;
        Optional<FullReason> fullReason;
        boolean canCheckpoint;
        /** A raw RBD disk captured by an RBD snapshot rather than by libvirt's job; empty otherwise. */
        Optional<RbdSnapshotDisk> rbd;

        Planned(
                DomainXml.Disk disk,
                long size,
                Optional<FullReason> fullReason,
                boolean canCheckpoint,
                Optional<RbdSnapshotDisk> rbd) {
            this.disk = disk;
            this.size = size;
            this.fullReason = fullReason;
            this.canCheckpoint = canCheckpoint;
            this.rbd = rbd;
        }

        /** Whether libvirt's backup job captures this disk (every disk but those on RBD snapshots). */
        boolean inJob() {
            return rbd.isEmpty();
        }
    }

    private LibvirtCapture(
            LibvirtHypervisor hypervisor,
            Domain domain,
            String vm,
            CaptureRequest request,
            String prefix,
            Runnable onClosed) {
        this.hypervisor = hypervisor;
        this.domain = domain;
        this.vm = vm;
        this.since = request.sinceCheckpoint();
        this.newCheckpoint = request.newCheckpoint();
        this.leftoverPrefix = request.leftoverPrefix(prefix);
        this.onClosed = onClosed;
    }

    /**
     * Removes leftovers of a crashed worker, then starts the backup job. On failure the job is ended
     * and the new checkpoint deleted.
     */
    static LibvirtCapture open(
            LibvirtHypervisor hypervisor,
            Domain domain,
            CaptureRequest request,
            Clock clock,
            String prefix,
            Runnable onClosed)
            throws LibvirtException {
        LibvirtCapture c = new LibvirtCapture(hypervisor, domain, request.vm(), request, prefix, onClosed);
        try {
            c.removeLeftovers(c.leftoverPrefix);
            c.plan();
            c.begin(request.workDir(), clock);
            return c;
        } catch (LibvirtException | RuntimeException e) {
            try {
                c.teardown();
            } catch (TidemarkException t) {
                e.addSuppressed(t);
            }
            throw e;
        }
    }

    /**
     * A pull backup job whose scratch files are ours was left by a crashed worker: abort it. Then
     * delete our checkpoints other than {@code since}; libvirt's checkpoints all record, so no change
     * since {@code since} is lost.
     */
    private void removeLeftovers(String prefix) throws LibvirtException {
        if (domain.getJobInfo().getType() != 0) {
            String backup;
            try {
                backup = domain.getBackupXMLDesc(0);
            } catch (LibvirtException e) {
                if (LibvirtHypervisor.code(e) != ErrorNumber.VIR_ERR_NO_DOMAIN_BACKUP) {
                    throw e;
                }
                throw new RetriableException("domain '" + vm + "' (libvirt " + hypervisor.uri() + ") runs another"
                        + " job (" + domain.getJobInfo() + "); retry when it has finished");
            }
            Matcher ours = OUR_SCRATCH.matcher(backup);
            if (!ours.find()) {
                throw new RetriableException("domain '" + vm + "' (libvirt " + hypervisor.uri() + ") runs a backup"
                        + " job of another tool; retry when it has finished");
            }
            if (!HostScratch.isLeftover(ours.group(1))) {
                throw new RetriableException("domain '" + vm + "' (libvirt " + hypervisor.uri() + ") is being backed"
                        + " up by another live capture of this engine (another repository's worker protects it too);"
                        + " retry when it has finished");
            }
            log.warn("domain {}: aborting a backup job left by an interrupted capture", vm);
            abortJob();
        }
        for (String name : domain.checkpointListNames(0)) {
            if (name.startsWith(prefix) && !since.filter(name::equals).isPresent()) {
                log.warn("domain {}: deleting checkpoint {} left by an interrupted capture", vm, name);
                deleteCheckpoint(name);
            }
        }
    }

    /** Decides per disk between incremental and full, from the domain's and the checkpoint's XML. */
    private void plan() throws LibvirtException {
        Map<String, String> covered = Map.of();
        if (since.isPresent()) {
            try {
                DomainCheckpoint cp = domain.checkpointLookupByName(since.get());
                if (cp != null) { // the binding returns null rather than throwing for a missing checkpoint
                    covered = DomainXml.checkpointDisks(cp.getXMLDesc(0));
                    sinceExists = true;
                }
            } catch (LibvirtException e) {
                if (LibvirtHypervisor.code(e) != ErrorNumber.VIR_ERR_NO_DOMAIN_CHECKPOINT) {
                    throw e;
                }
            }
        }
        String domainXml = domain.getXMLDesc(0); // not VIR_DOMAIN_XML_SECURE: libvirt leaves passwords out
        definition = LibvirtDefinition.of(domainXml);
        List<DomainXml.Disk> all = DomainXml.disks(domainXml);
        if (all.isEmpty()) {
            throw new PermanentException(
                    "domain '" + vm + "' (libvirt " + hypervisor.uri() + ") has no disk to capture");
        }
        if (all.stream().anyMatch(d -> d.rbd().isPresent())) {
            RbdSnapshotDisk.stopLeftoverServers();
        }
        for (DomainXml.Disk d : all) {
            boolean qcow2 = d.format().equals("qcow2");
            Optional<RbdSnapshotDisk> rbd = RbdSnapshotDisk.open(vm, d, leftoverPrefix, since, newCheckpoint);
            Optional<FullReason> reason;
            if (rbd.isPresent()) {
                reason = Optional.empty(); // decided at the instant, from the RBD snapshots
            } else if (!qcow2) {
                reason = full(
                        FullReason.Kind.NO_PERSISTENT_BITMAPS,
                        "disk " + d.target() + " is " + (d.format().isEmpty() ? "not qcow2" : d.format())
                                + ", which cannot store persistent bitmaps; convert it to qcow2 v3 to get incremental"
                                + " backups");
            } else if (since.isEmpty()) {
                reason = full(FullReason.Kind.FIRST_BACKUP, "first backup: there is no parent checkpoint");
            } else if (!sinceExists) {
                reason = full(
                        FullReason.Kind.CHECKPOINT_MISSING,
                        "checkpoint " + since.get() + " missing in libvirt (deleted, or the domain was"
                                + " redefined without its checkpoints)");
            } else if (!"bitmap".equals(covered.get(d.target()))) {
                boolean cannotPersist = covered.containsKey(d.target());
                reason = full(
                        cannotPersist ? FullReason.Kind.NO_PERSISTENT_BITMAPS : FullReason.Kind.CHECKPOINT_MISSING,
                        "checkpoint " + since.get() + " does not track disk " + d.target()
                                + (cannotPersist
                                        ? " (its image, qcow2 v2 for example, cannot store persistent bitmaps)"
                                        : " (the disk was added or replaced since)"));
            } else {
                reason = Optional.empty();
            }
            disks.put(d.target(), new Planned(d, domain.blockInfo(d.target()).getCapacity(), reason, qcow2, rbd));
        }
    }

    private static Optional<FullReason> full(FullReason.Kind kind, String detail) {
        return Optional.of(FullReason.of(kind, detail));
    }

    /**
     * The capture's instant: the RBD snapshots of the disks on RBD, and libvirt's job with the new
     * checkpoint over the others, with the domain paused around both when there is more than one disk
     * and one is on RBD (so that all are at one instant). Then the exports: libvirt's NBD server for
     * the job's disks, one read-only {@code qemu-nbd} per RBD snapshot.
     */
    private void begin(Path workDir, Clock clock) throws LibvirtException {
        nbdSocket = socketPath(workDir);
        for (Planned p : disks.values()) {
            if (!p.inJob()) {
                continue;
            }
            Path scratch = scratch(workDir, p);
            try {
                Files.deleteIfExists(scratch); // libvirt refuses a scratch file that exists
            } catch (IOException e) {
                throw new PermanentException("cannot delete the old scratch file " + scratch + " for the capture of"
                        + " domain '" + vm + "': " + e);
            }
        }
        List<Planned> onRbd = disks.values().stream().filter(p -> !p.inJob()).toList();
        // one RBD snapshot is atomic for its image; several images, or an image and libvirt's job,
        // are at one instant only while the guest does not run: QEMU's 'stop' also flushes every disk
        boolean resume = !onRbd.isEmpty() && disks.size() > 1 && pause();
        long pausedAt = System.nanoTime();
        try {
            for (Planned p : onRbd) {
                RbdSnapshotDisk r = p.rbd.orElseThrow();
                try {
                    r.takeSnapshot();
                    rbdDisks.add(r);
                } catch (TidemarkException e) {
                    log.warn(
                            "domain {}: cannot take RBD snapshot {} of disk {}; it is read whole through libvirt: {}",
                            vm,
                            newCheckpoint,
                            r.target(),
                            e.getMessage());
                    p.rbd = Optional.empty();
                    p.canCheckpoint = false;
                    p.fullReason = full(
                            FullReason.Kind.NO_PERSISTENT_BITMAPS,
                            "disk " + r.target() + " is on RBD image " + r.image()
                                    + ", which libvirt cannot checkpoint, and its RBD snapshot could not be taken: "
                                    + e.getMessage());
                }
            }
            if (disks.values().stream().anyMatch(Planned::inJob)) {
                beginJob(workDir);
            }
            capturedAt = clock.instant();
        } finally {
            if (resume) {
                resume();
                log.info(
                        "domain {}: paused {} ms for the snapshots of its RBD disks {}",
                        vm,
                        (System.nanoTime() - pausedAt) / 1_000_000,
                        rbdDisks.stream().map(RbdSnapshotDisk::image).toList());
            }
        }
        Map<String, DomainXml.BackupDisk> exported =
                begun ? DomainXml.backupDisks(domain.getBackupXMLDesc(0)) : Map.of();
        List<DiskExport> out = new ArrayList<>();
        for (Planned p : disks.values()) {
            if (p.rbd.isPresent()) {
                RbdSnapshotDisk r = p.rbd.get();
                out.add(r.export(p.size, nbdSocket.resolveSibling(RbdSnapshotDisk.socketName(token, p.disk.target()))));
                continue;
            }
            DomainXml.BackupDisk b = exported.get(p.disk.target());
            if (b == null) {
                throw new PermanentException("libvirt did not export disk " + p.disk.target() + " of domain '" + vm
                        + "' in the backup job (libvirt " + hypervisor.uri() + ")");
            }
            Optional<String> bitmap = p.fullReason.isPresent() ? Optional.empty() : b.exportBitmap();
            if (p.fullReason.isEmpty() && bitmap.isEmpty()) {
                p.fullReason = Optional.of(FullReason.of(
                        FullReason.Kind.NO_DIRTY_BITMAP,
                        "libvirt exported disk " + p.disk.target() + " without a dirty bitmap"));
            }
            out.add(new DiskExport(
                    p.disk.target(),
                    p.size,
                    nbdSocket,
                    b.exportName(),
                    bitmap.map(n -> "qemu:dirty-bitmap:" + n),
                    p.fullReason,
                    Optional.empty()));
        }
        exports = List.copyOf(out);
        log.info(
                "domain {}: captured {} disk(s) at {} ({})",
                vm,
                exports.size(),
                capturedAt,
                exports.stream()
                        .map(e -> e.disk() + ": "
                                + e.fullReason().map(r -> "full, " + r).orElse("incremental"))
                        .toList());
    }

    /**
     * Starts libvirt's job over the disks it captures, and the new checkpoint, in one call. A disk
     * whose checkpoint bitmap libvirt finds missing or broken (QEMU was killed) is made full, and the
     * job is started again.
     */
    private void beginJob(Path workDir) throws LibvirtException {
        while (true) {
            try {
                domain.backupBegin(backupXml(workDir), checkpointXml(), 0);
                break;
            } catch (LibvirtException e) {
                Planned unpersistable = unpersistable(LibvirtHypervisor.message(e));
                if (unpersistable != null) {
                    // nothing was started: retry with no bitmap for that disk, which is then always full
                    log.warn(
                            "domain {}: disk {} ({}) cannot store persistent bitmaps; it is read in full at"
                                    + " every capture until it is converted to qcow2 v3",
                            vm,
                            unpersistable.disk.target(),
                            unpersistable.disk.source());
                    unpersistable.canCheckpoint = false;
                    unpersistable.fullReason = Optional.of(FullReason.of(
                            FullReason.Kind.NO_PERSISTENT_BITMAPS,
                            "disk " + unpersistable.disk.target()
                                    + " cannot store persistent bitmaps (a qcow2 v2 image?): "
                                    + LibvirtHypervisor.message(e)
                                    + "; convert it with qemu-img amend -o compat=1.1 to get incremental backups"));
                    continue;
                }
                Matcher m = BROKEN_DISK.matcher(LibvirtHypervisor.message(e));
                Planned p = m.find() ? disks.get(m.group(1)) : null;
                if (LibvirtHypervisor.code(e) != ErrorNumber.VIR_ERR_CHECKPOINT_INCONSISTENT
                        || p == null
                        || p.fullReason.isPresent()) {
                    throw e;
                }
                p.fullReason = Optional.of(FullReason.of(
                        FullReason.Kind.CHECKPOINT_INCONSISTENT,
                        "checkpoint " + since.orElseThrow() + " inconsistent on disk " + p.disk.target()
                                + " (QEMU was not shut down cleanly): " + LibvirtHypervisor.message(e)));
            }
        }
        begun = true;
    }

    /**
     * Resumes the domain paused for the instant, trying twice: a guest left paused is worse than a
     * failed capture. If both fail, the error says so and how to resume it by hand.
     */
    private void resume() throws LibvirtException {
        try {
            domain.resume();
        } catch (LibvirtException first) {
            log.warn(
                    "domain {}: resuming after the RBD snapshots failed, trying again: {}",
                    vm,
                    LibvirtHypervisor.message(first));
            try {
                domain.resume();
            } catch (LibvirtException second) {
                second.addSuppressed(first);
                throw new PermanentException(
                        "domain '" + vm + "' (libvirt " + hypervisor.uri() + ") was paused for the snapshots of its"
                                + " RBD disks and could not be resumed: " + LibvirtHypervisor.message(second)
                                + "; resume it now with virsh -c '" + hypervisor.uri() + "' resume " + vm,
                        second);
            }
        }
    }

    /**
     * Pauses the domain for the instant of a capture with RBD disks.
     *
     * @return whether it was running, so the capture must resume it
     */
    private boolean pause() throws LibvirtException {
        if (domain.getInfo().state != DomainInfo.DomainState.VIR_DOMAIN_RUNNING) {
            return false; // paused already (by its owner): it stays as it is
        }
        domain.suspend();
        return true;
    }

    /** The disk QEMU could not give a persistent bitmap, if that is what the message says. */
    private Planned unpersistable(String message) {
        Matcher m = NOT_PERSISTABLE.matcher(message);
        if (!m.find()) {
            return null;
        }
        int index = Integer.parseInt(m.group(1));
        return disks.values().stream()
                .filter(p -> p.canCheckpoint && p.disk.index() == index)
                .findFirst()
                .orElse(null);
    }

    private String backupXml(Path workDir) {
        boolean anyIncremental = disks.values().stream().anyMatch(p -> p.inJob() && p.fullReason.isEmpty());
        StringBuilder x = new StringBuilder("<domainbackup mode='pull'>");
        if (anyIncremental) {
            x.append("<incremental>")
                    .append(LibvirtXml.escape(since.orElseThrow()))
                    .append("</incremental>");
        }
        x.append("<server transport='unix' socket='")
                .append(LibvirtXml.escape(nbdSocket.toString()))
                .append("'/><disks>");
        for (Planned p : disks.values()) {
            if (!p.inJob()) { // captured by its RBD snapshot
                x.append("<disk name='")
                        .append(LibvirtXml.escape(p.disk.target()))
                        .append("' backup='no'/>");
                continue;
            }
            x.append("<disk name='").append(LibvirtXml.escape(p.disk.target())).append("' backup='yes' type='file'");
            if (p.fullReason.isPresent() && anyIncremental) {
                x.append(" backupmode='full'");
            }
            x.append("><scratch file='")
                    .append(LibvirtXml.escape(scratch(workDir, p).toString()))
                    .append("'/></disk>");
        }
        return x.append("</disks></domainbackup>").toString();
    }

    private String checkpointXml() {
        StringBuilder x = new StringBuilder("<domaincheckpoint><name>")
                .append(LibvirtXml.escape(newCheckpoint))
                .append("</name><disks>");
        for (Planned p : disks.values()) {
            x.append("<disk name='")
                    .append(LibvirtXml.escape(p.disk.target()))
                    .append("' checkpoint='")
                    .append(p.canCheckpoint && p.inJob() ? "bitmap" : "no")
                    .append("'/>");
        }
        return x.append("</disks></domaincheckpoint>").toString();
    }

    private Path scratch(Path workDir, Planned p) {
        return workDir.toAbsolutePath()
                .resolve(SCRATCH_PREFIX + token + "-" + p.disk.target().replace('/', '_') + ".qcow2");
    }

    private Path socketPath(Path workDir) {
        Path socket = workDir.toAbsolutePath().resolve(socketName());
        int longest = disks.values().stream()
                .filter(p -> !p.inJob())
                .mapToInt(
                        p -> RbdSnapshotDisk.socketName(token, p.disk.target()).length() + ".pid".length())
                .max()
                .orElse(0);
        Path longestSocket = workDir.toAbsolutePath()
                .resolve("x".repeat(Math.max(longest, socketName().length())));
        if (longestSocket.toString().getBytes(StandardCharsets.UTF_8).length <= MAX_SOCKET_PATH) {
            return socket;
        }
        try {
            privateSocketDir = Files.createTempDirectory(HostScratch.SOCKET_DIR_PREFIX + token + "-");
        } catch (IOException e) {
            throw new PermanentException("the work directory " + workDir + " is too deep for a Unix socket and no"
                    + " temporary directory could be created: " + e);
        }
        return privateSocketDir.resolve(socketName());
    }

    private String socketName() {
        return "nbd-" + token + ".sock";
    }

    @Override
    public Optional<VmDefinition> definition() {
        return Optional.ofNullable(definition);
    }

    @Override
    public Instant capturedAt() {
        return capturedAt;
    }

    @Override
    public List<DiskExport> disks() {
        return exports;
    }

    /**
     * Records that the restore point is committed; {@link #close()} deletes the old checkpoint once
     * the job, which may use it, has ended.
     */
    @Override
    public synchronized void commit() {
        if (closed) {
            // closed from another thread (the job's deadline cancelled it) after the restore point was written
            log.warn(
                    "domain {}: the capture was closed before its restore point's commit reached it; checkpoint {}"
                            + " was deleted, so the next capture of this domain reads its disks in full",
                    vm,
                    newCheckpoint);
            return;
        }
        committed = true;
    }

    /**
     * Ends the job and settles the checkpoints, waiting at most the adapter's timeout (libvirt waits
     * for a stopped QEMU for ever): then a {@link RetriableException}, and the teardown finishes in
     * the background when libvirt returns.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed || closing) {
                return;
            }
            closing = true;
        }
        hypervisor.bounded("closing the capture of domain '" + vm + "'", this::teardown);
    }

    private synchronized void teardown() {
        try {
            teardownSteps();
        } finally {
            HostScratch.release(token);
        }
    }

    /**
     * The worker is gone without closing (the adapter was closed under an open capture): leave the
     * job to the next capture, as a crash would.
     */
    synchronized void abandon() {
        if (closed) {
            return;
        }
        closed = true;
        HostScratch.release(token);
        onClosed.run();
    }

    String vm() {
        return vm;
    }

    private void teardownSteps() {
        closed = true;
        List<TidemarkException> errors = new ArrayList<>();
        if (begun) {
            step(errors, "ending the backup job", this::abortJob);
            if (committed) {
                if (sinceExists) {
                    step(errors, "deleting the old checkpoint " + since.get(), () -> deleteCheckpoint(since.get()));
                }
            } else {
                step(errors, "deleting the new checkpoint " + newCheckpoint, () -> deleteCheckpoint(newCheckpoint));
            }
        }
        for (RbdSnapshotDisk r : rbdDisks) {
            step(errors, "stopping the qemu-nbd serving RBD image " + r.image(), r::stopServer);
            r.settle(committed);
        }
        if (privateSocketDir != null) {
            step(errors, "deleting " + privateSocketDir, () -> {
                try {
                    Files.deleteIfExists(privateSocketDir.resolve(socketName()));
                    Files.deleteIfExists(privateSocketDir);
                } catch (IOException e) {
                    throw new RetriableException("cannot delete " + privateSocketDir + ": " + e, e);
                }
            });
        }
        onClosed.run();
        if (!errors.isEmpty()) {
            TidemarkException first = errors.get(0);
            String msg = "closing the capture of domain '" + vm + "' (libvirt " + hypervisor.uri() + ") failed: "
                    + first.getMessage() + "; the next capture of this domain removes what is left";
            TidemarkException e =
                    first.retriable() ? new RetriableException(msg, first) : new PermanentException(msg, first);
            errors.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
    }

    /** Ends the job; a job that already ended (the domain stopped, say) is fine. */
    private void abortJob() throws LibvirtException {
        try {
            domain.abortJob();
        } catch (LibvirtException e) {
            if (LibvirtHypervisor.code(e) != ErrorNumber.VIR_ERR_OPERATION_INVALID) {
                throw e;
            }
            log.debug("domain {}: no job to abort: {}", vm, LibvirtHypervisor.message(e));
        }
    }

    private void deleteCheckpoint(String name) throws LibvirtException {
        try {
            DomainCheckpoint cp = domain.checkpointLookupByName(name);
            if (cp != null) {
                cp.delete(0);
            }
        } catch (LibvirtException e) {
            if (LibvirtHypervisor.code(e) != ErrorNumber.VIR_ERR_NO_DOMAIN_CHECKPOINT) {
                throw e;
            }
        }
    }

    /** A libvirt call during teardown. */
    @FunctionalInterface
    private interface Step {
        void run() throws LibvirtException;
    }

    private void step(List<TidemarkException> errors, String what, Step action) {
        try {
            action.run();
        } catch (LibvirtException e) {
            errors.add(hypervisor.translate(e, what + " of domain '" + vm + "'"));
        } catch (TidemarkException e) {
            errors.add(e);
        }
    }

    @Override
    public String toString() {
        return "LibvirtCapture[" + vm + " at " + capturedAt + ", " + exports.size() + " disk(s)]";
    }
}
