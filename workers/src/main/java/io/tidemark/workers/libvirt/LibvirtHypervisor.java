package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.DiskSwitch;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
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
 *   <li>A raw disk on Ceph RBD ({@code <source protocol='rbd'>}), which libvirt cannot checkpoint, is
 *       left out of the job (ADR 18 addendum, design invariant 36): its point in time is the RBD
 *       snapshot {@code newCheckpoint} of its image, taken with the domain paused when it has more
 *       than one disk (so every disk is at one instant), read from that snapshot through a read-only
 *       {@code qemu-nbd} of the capture, and incremental from {@code rbd diff --from-snap
 *       sinceCheckpoint}. A commit removes the {@code sinceCheckpoint} snapshot, a close without
 *       commit the new one; our other snapshots and {@code qemu-nbd} servers of captures that are
 *       over are removed when the next capture opens. An RBD disk whose snapshots cannot be managed
 *       stays in the job and is read whole.
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
 *   <li>libvirtd waits for QEMU without a deadline (a QEMU stopped with SIGSTOP blocks the call for
 *       ever), so a capture and the teardown of one run on a thread of their own and the caller
 *       waits at most the adapter's timeout: then a {@link RetriableException} saying QEMU may be
 *       stopped or hung. The call goes on; a capture that completes after its caller gave up is
 *       closed at once (no commit: the change tracking is as before), and until then the domain
 *       counts as being captured. A listing waits at most the timeout for all domains together and
 *       reports a domain that did not answer as it last answered.
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

    /** The default deadline of each capture and teardown through libvirt. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** Threads for libvirt calls that may block (libvirtd waiting for a stopped QEMU). */
    private static final ExecutorService CALLS = Executors.newCachedThreadPool(DaemonThreads.named("libvirt-call"));

    private final String uri;
    private final Clock clock;
    private final String checkpointPrefix;
    private final Duration timeout;
    private final Set<String> capturing = ConcurrentHashMap.newKeySet();
    private final Map<String, LibvirtCapture> open = new ConcurrentHashMap<>();

    /** Each domain as it last answered a listing: one whose QEMU is stopped is listed so. */
    private final Map<String, VmInfo> lastSeen = new ConcurrentHashMap<>();

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
        this(uri, clock, checkpointPrefix, DEFAULT_TIMEOUT);
    }

    /**
     * @param timeout how long a capture, and the teardown of one, may wait for libvirt (which waits
     *     for QEMU without a deadline of its own)
     */
    public LibvirtHypervisor(String uri, Clock clock, String checkpointPrefix, Duration timeout) {
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
        this.timeout = timeout;
    }

    /** The connection URI. */
    public String uri() {
        return uri;
    }

    /** The prefix of the checkpoints this adapter creates. */
    String checkpointPrefix() {
        return checkpointPrefix;
    }

    /** The active domains, sorted by name, with their guest disks. */
    @Override
    public List<VmInfo> list() {
        try {
            Domain[] domains =
                    connection().listAllDomains(Connect.ConnectListAllDomainsFlags.CONNECT_LIST_DOMAINS_ACTIVE);
            // the disk sizes come from QEMU, which libvirtd waits for without a deadline: ask for all
            // domains at once and wait at most the timeout for all of them together
            Map<String, Future<VmInfo>> asked = new LinkedHashMap<>();
            for (Domain d : domains) {
                asked.put(d.getName(), CALLS.submit(() -> info(d)));
            }
            long deadline = System.nanoTime() + timeout.toNanos();
            List<VmInfo> out = new ArrayList<>();
            for (Map.Entry<String, Future<VmInfo>> a : asked.entrySet()) {
                String name = a.getKey();
                try {
                    VmInfo info = a.getValue().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                    lastSeen.put(name, info);
                    out.add(info);
                } catch (TimeoutException e) {
                    VmInfo seen = lastSeen.get(name);
                    if (seen != null) {
                        out.add(seen);
                    }
                    log.info(
                            "domain {} did not answer within {} ({}): {}",
                            name,
                            timeout,
                            seen != null ? "listed as last seen" : "skipped",
                            "QEMU may be stopped or hung");
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof LibvirtException le
                            && (code(le) == ErrorNumber.VIR_ERR_NO_DOMAIN
                                    || code(le) == ErrorNumber.VIR_ERR_OPERATION_INVALID)) {
                        log.debug("domain vanished while listing {}: {}", uri, le.getMessage());
                        continue;
                    }
                    if (e.getCause() instanceof LibvirtException le) {
                        throw le;
                    }
                    throw rethrown(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RetriableException("interrupted while listing the domains of libvirt " + uri, e);
                }
            }
            lastSeen.keySet().retainAll(asked.keySet());
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
        // libvirtd waits for QEMU without a deadline (a stopped QEMU blocks the call for ever): the call
        // runs on a thread of its own; a caller that gives up leaves it to close what it opens
        AtomicBoolean gaveUp = new AtomicBoolean();
        Future<LibvirtCapture> call = CALLS.submit(() -> {
            try {
                Domain domain = lookup(vm);
                LibvirtCapture c = LibvirtCapture.open(this, domain, request, clock, checkpointPrefix, () -> {
                    open.remove(vm);
                    capturing.remove(vm);
                });
                synchronized (gaveUp) {
                    if (!gaveUp.get()) {
                        open.put(vm, c);
                        return c;
                    }
                }
                log.warn("domain {}: a capture finished after its caller gave up; closing it", vm);
                closeLate(c);
                return null;
            } catch (LibvirtException e) {
                capturing.remove(vm);
                throw translate(e, "capture of domain '" + vm + "'");
            } catch (RuntimeException e) {
                capturing.remove(vm);
                throw e;
            }
        });
        try {
            return call.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw rethrown(e.getCause());
        } catch (TimeoutException | InterruptedException e) {
            boolean interrupted = e instanceof InterruptedException;
            synchronized (gaveUp) {
                if (call.isDone()) {
                    try {
                        return call.get();
                    } catch (ExecutionException x) {
                        throw rethrown(x.getCause());
                    } catch (InterruptedException x) {
                        Thread.currentThread().interrupt();
                    }
                }
                gaveUp.set(true);
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
                throw new RetriableException(
                        "interrupted while capturing domain '" + vm + "' (libvirt " + uri
                                + "); the capture is closed in the background as soon as libvirt returns",
                        e);
            }
            throw new RetriableException(
                    "capture of domain '" + vm + "' (libvirt " + uri + ") got no answer within " + timeout + ": "
                            + STOPPED,
                    e);
        }
    }

    /** What a libvirt call that did not return in time may mean, and what to do. */
    static final String STOPPED = "QEMU may be stopped (SIGSTOP) or hung (libvirtd waits for its monitor); check"
            + " the domain's QEMU process, the job may be retried later. The call goes on in the background"
            + " and what it opens is closed";

    private static void closeLate(LibvirtCapture c) {
        try {
            c.close();
        } catch (TidemarkException e) {
            log.warn("domain {}: closing a capture whose caller gave up failed: {}", c.vm(), e.getMessage());
        }
    }

    private static TidemarkException rethrown(Throwable cause) {
        if (cause instanceof TidemarkException t) {
            return t.retriable()
                    ? new RetriableException(t.getMessage(), t)
                    : new PermanentException(t.getMessage(), t);
        }
        if (cause instanceof RuntimeException r) {
            throw r;
        }
        return new RetriableException("libvirt call failed: " + cause, cause);
    }

    /**
     * Runs a libvirt call with the adapter's deadline (the call itself goes on in the background
     * when it is exceeded).
     */
    void bounded(String what, Runnable call) {
        Future<?> f = CALLS.submit(call);
        try {
            f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw rethrown(e.getCause());
        } catch (TimeoutException e) {
            throw new RetriableException(
                    what + " (libvirt " + uri + ") got no answer within " + timeout + ": " + STOPPED, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException(
                    "interrupted while " + what + " (libvirt " + uri + "); it goes on in the" + " background", e);
        }
    }

    /** Rollback's disk switch: the domain is restarted on the restored images ({@link LibvirtDiskSwitch}). */
    @Override
    public Optional<DiskSwitch> diskSwitch() {
        return Optional.of(new LibvirtDiskSwitch(this));
    }

    Domain lookup(String vm) throws LibvirtException {
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

    /**
     * libvirt prints every error to stderr unless a handler is set; exceptions carry them anyway.
     * Every connection of Tidemark's (capture here, the DR host in recovery) calls this first.
     */
    public static void silenceDefaultErrorHandler() {
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
