package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import java.nio.file.Files;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.libvirt.Connect;
import org.libvirt.Domain;
import org.libvirt.Error.ErrorNumber;
import org.libvirt.ErrorCallback;
import org.libvirt.LibvirtException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The VMs of one host managed by libvirt, reached through libvirt's C API ({@code
 * org.libvirt:libvirt} over JNA; needs Debian's {@code libvirt0}). The VMs are the active domains
 * of the connection URI ({@code qemu:///system}, or {@code qemu:///system?socket=...}); their disks
 * are the {@code <disk device='disk'>} elements of the domain XML, named by their target ({@code
 * vda}).
 *
 * <p>Contract, beyond {@link Hypervisor}'s:
 *
 * <ul>
 *   <li>A capture is one libvirt pull-mode backup job ({@code virDomainBackupBegin}) over every disk,
 *       which atomically starts the checkpoint {@code newCheckpoint}; QEMU does copy-before-write
 *       into scratch qcow2 files in the request's work directory and exports the disks over NBD on
 *       a Unix socket there (or in a private temporary directory when that path is too long). The
 *       guest is never paused. In libvirt's stock configuration QEMU runs as {@code libvirt-qemu}:
 *       the work directory must then be writable by that user.
 *   <li>A disk is incremental ({@code <incremental>sinceCheckpoint}) when that checkpoint exists in
 *       libvirt, covers the disk and its bitmap is intact; otherwise the disk is full and its export
 *       says why (first backup, checkpoint missing, not covering the disk, inconsistent after QEMU
 *       was killed, a disk format without persistent bitmaps).
 *   <li>{@link Capture#commit()} then {@link Capture#close()} ends the job and deletes {@code
 *       sinceCheckpoint}; the new one keeps recording. Closing without commit ends the job and
 *       deletes the new checkpoint: libvirt's checkpoints all record, so {@code sinceCheckpoint}
 *       still holds every change.
 *   <li>Checkpoint names must start with the prefix ({@value #CHECKPOINT_PREFIX} by default). A
 *       capture deletes the checkpoints of its {@link CaptureRequest#owner() owner} ({@code
 *       <prefix><owner>-...}, or every one with the prefix for a request without owner) other than
 *       {@code sinceCheckpoint}: leftovers of its interrupted captures. It aborts a pull backup job
 *       whose scratch files carry a {@link io.tidemark.core.hypervisor.HostScratch} tag of a capture
 *       that is over (its process is gone). Checkpoints of other owners and tools, and jobs of live
 *       captures or other tools, are never touched; such a job is a {@link RetriableException}.
 *   <li>One capture per domain at a time; a second one is a {@link RetriableException}. Shut-off
 *       domains cannot be captured (libvirt has no offline backup): a {@link PermanentException}.
 *   <li>Every fault is a {@link RetriableException} (libvirtd unreachable, timeouts, busy) or a
 *       {@link PermanentException} (unknown domain, bad configuration) whose message names the domain
 *       and the URI.
 * </ul>
 */
public final class LibvirtHypervisor implements Hypervisor {

    private static final Logger log = LoggerFactory.getLogger(LibvirtHypervisor.class);

    /** The prefix of the checkpoints this engine creates. */
    public static final String CHECKPOINT_PREFIX = "tm-";

    /** libvirt errors worth retrying: the daemon or QEMU did not answer, or was busy. */
    private static final Set<ErrorNumber> RETRIABLE = EnumSet.of(
            ErrorNumber.VIR_ERR_SYSTEM_ERROR,
            ErrorNumber.VIR_ERR_RPC,
            ErrorNumber.VIR_ERR_NO_CONNECT,
            ErrorNumber.VIR_ERR_INVALID_CONN,
            ErrorNumber.VIR_ERR_OPERATION_TIMEOUT,
            ErrorNumber.VIR_ERR_OPERATION_ABORTED,
            ErrorNumber.VIR_ERR_AGENT_UNRESPONSIVE,
            ErrorNumber.VIR_ERR_RESOURCE_BUSY,
            ErrorNumber.VIR_ERR_BLOCK_COPY_ACTIVE,
            ErrorNumber.VIR_ERR_AUTH_UNAVAILABLE,
            ErrorNumber.VIR_ERR_NO_SERVER);

    private static volatile boolean errorHandlerSet;

    private final String uri;
    private final Clock clock;
    private final String checkpointPrefix;
    private final Set<String> capturing = ConcurrentHashMap.newKeySet();
    private final Map<String, LibvirtCapture> open = new ConcurrentHashMap<>();
    private Connect connection; // guarded by this

    /** The active domains of {@code uri}, with the system clock. Connects on first use. */
    public LibvirtHypervisor(String uri) {
        this(uri, Clock.systemUTC(), CHECKPOINT_PREFIX);
    }

    /**
     * @param uri the libvirt connection URI, for example {@code qemu:///system}
     * @param clock gives {@link Capture#capturedAt()}
     * @param checkpointPrefix the prefix every checkpoint name of this engine has
     */
    public LibvirtHypervisor(String uri, Clock clock, String checkpointPrefix) {
        if (checkpointPrefix.isEmpty()) {
            throw new IllegalArgumentException(
                    "the checkpoint prefix must not be empty: it tells our checkpoints apart");
        }
        if (uri == null || uri.isBlank()) {
            throw new PermanentException("no libvirt URI configured; set uri (for example qemu:///system)");
        }
        this.uri = uri;
        this.clock = clock;
        this.checkpointPrefix = checkpointPrefix;
    }

    /** The connection URI. */
    public String uri() {
        return uri;
    }

    /** The active domains, sorted by name, with their guest disks. */
    @Override
    public List<VmInfo> list() {
        try {
            Domain[] domains =
                    connection().listAllDomains(Connect.ConnectListAllDomainsFlags.CONNECT_LIST_DOMAINS_ACTIVE);
            List<VmInfo> out = new ArrayList<>();
            for (Domain d : domains) {
                try {
                    out.add(info(d));
                } catch (LibvirtException e) {
                    if (code(e) != ErrorNumber.VIR_ERR_NO_DOMAIN && code(e) != ErrorNumber.VIR_ERR_OPERATION_INVALID) {
                        throw e;
                    }
                    log.debug("domain vanished while listing {}: {}", uri, e.getMessage());
                }
            }
            out.sort(Comparator.comparing(VmInfo::name));
            return out;
        } catch (LibvirtException e) {
            throw translate(e, "listing the domains");
        }
    }

    private static VmInfo info(Domain d) throws LibvirtException {
        List<DiskInfo> disks = new ArrayList<>();
        for (DomainXml.Disk disk : DomainXml.disks(d.getXMLDesc(0))) {
            long size = d.blockInfo(disk.target()).getCapacity();
            disks.add(new DiskInfo(disk.target(), disk.source(), size));
        }
        return new VmInfo(d.getName(), disks);
    }

    @Override
    public Capture capture(CaptureRequest request) {
        String vm = request.vm();
        validate(request);
        if (!capturing.add(vm)) {
            throw new RetriableException("a capture of domain '" + vm + "' (libvirt " + uri
                    + ") is already open on this host; retry when it is closed");
        }
        try {
            Domain domain = lookup(vm);
            LibvirtCapture c = LibvirtCapture.open(this, domain, request, clock, checkpointPrefix, () -> {
                open.remove(vm);
                capturing.remove(vm);
            });
            open.put(vm, c);
            return c;
        } catch (LibvirtException e) {
            capturing.remove(vm);
            throw translate(e, "capture of domain '" + vm + "'");
        } catch (RuntimeException e) {
            capturing.remove(vm);
            throw e;
        }
    }

    private Domain lookup(String vm) throws LibvirtException {
        Domain domain;
        try {
            domain = connection().domainLookupByName(vm);
        } catch (LibvirtException e) {
            if (code(e) == ErrorNumber.VIR_ERR_NO_DOMAIN) {
                throw new PermanentException("no domain '" + vm + "' on libvirt " + uri
                        + "; check the VM's name and which host runs it (virsh -c '" + uri + "' list --all)");
            }
            throw e;
        }
        if (domain.isActive() == 0) {
            throw new PermanentException("domain '" + vm + "' on libvirt " + uri + " is not running; libvirt backs"
                    + " up running domains only: start it, or back up its images offline");
        }
        return domain;
    }

    private void validate(CaptureRequest r) {
        if (r.vm() == null || r.vm().isBlank()) {
            throw new PermanentException("a capture needs a domain name");
        }
        if (!r.newCheckpoint().startsWith(checkpointPrefix)
                || r.newCheckpoint().length() > 1023
                || r.newCheckpoint().contains("/")) {
            throw new PermanentException("checkpoint name '" + r.newCheckpoint() + "' for domain '" + r.vm()
                    + "' must start with '" + checkpointPrefix + "', have no '/' and be at most 1023 characters,"
                    + " so that leftovers can be told apart from other tools' checkpoints");
        }
        if (r.sinceCheckpoint().filter(r.newCheckpoint()::equals).isPresent()) {
            throw new PermanentException("capture of domain '" + r.vm() + "': the new checkpoint " + r.newCheckpoint()
                    + " must differ from the parent checkpoint");
        }
        if (!Files.isDirectory(r.workDir())) {
            throw new PermanentException("the work directory " + r.workDir() + " for the capture of domain '" + r.vm()
                    + "' does not exist; create it first");
        }
    }

    /** The open connection, (re)connecting when there is none or it died. */
    synchronized Connect connection() {
        if (connection != null) {
            try {
                if (connection.isAlive()) {
                    return connection;
                }
            } catch (LibvirtException e) {
                log.debug("libvirt connection to {} is dead: {}", uri, e.getMessage());
            }
            dropConnection();
        }
        silenceDefaultErrorHandler();
        try {
            connection = new Connect(uri, false);
            return connection;
        } catch (LibvirtException e) {
            throw new RetriableException(
                    "cannot connect to libvirt at " + uri + ": " + message(e)
                            + "; check that libvirtd runs and its socket is reachable; the job may be retried",
                    e);
        } catch (LinkageError e) {
            throw new PermanentException("cannot load libvirt's C library for " + uri + " (" + e.getMessage()
                    + "); install Debian's libvirt0 on the worker host");
        }
    }

    private synchronized void dropConnection() {
        if (connection == null) {
            return;
        }
        try {
            connection.close();
        } catch (LibvirtException e) {
            log.debug("closing the libvirt connection to {}: {}", uri, e.getMessage());
        }
        connection = null;
    }

    /** libvirt prints every error to stderr unless a handler is set; exceptions carry them anyway. */
    private static void silenceDefaultErrorHandler() {
        if (errorHandlerSet) {
            return;
        }
        try {
            Connect.setErrorCallback(new ErrorCallback());
            errorHandlerSet = true;
        } catch (LibvirtException e) {
            log.debug("cannot set libvirt's error handler: {}", e.getMessage());
        }
    }

    /**
     * Translates a libvirt error at the adapter boundary: retriable when the daemon or QEMU did not
     * answer or was busy (the connection is then dropped, so the next call reconnects), permanent
     * otherwise. The message names what was done, the URI and libvirt's own words.
     */
    TidemarkException translate(LibvirtException e, String doing) {
        boolean retriable = RETRIABLE.contains(code(e));
        if (retriable) {
            dropConnection();
        }
        String msg =
                doing + " (libvirt " + uri + ") failed: " + message(e) + (retriable ? "; the job may be retried" : "");
        return retriable ? new RetriableException(msg, e) : new PermanentException(msg, e);
    }

    static ErrorNumber code(LibvirtException e) {
        return e.getError() == null ? ErrorNumber.VIR_ERR_UNKNOWN : e.getError().getCode();
    }

    static String message(LibvirtException e) {
        return e.getError() != null && e.getError().getMessage() != null
                ? e.getError().getMessage()
                : String.valueOf(e.getMessage());
    }

    /**
     * Closes the connection. Captures still open are abandoned as a crash would leave them (their
     * jobs stay in libvirt for the next capture to abort). Close captures first.
     */
    @Override
    public void close() {
        for (LibvirtCapture c : List.copyOf(open.values())) {
            log.warn("domain {}: the adapter is closed under an open capture; it is abandoned", c.vm());
            c.abandon();
        }
        dropConnection();
    }

    @Override
    public String toString() {
        return "LibvirtHypervisor[" + uri + "]";
    }
}
