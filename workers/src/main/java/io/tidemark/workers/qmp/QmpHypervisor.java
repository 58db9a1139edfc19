package io.tidemark.workers.qmp;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The VMs of one host, reached through their QMP sockets: every Unix socket {@code <vm>.qmp} in the
 * socket directory is the monitor of the VM {@code <vm>}.
 *
 * <p>Contract, beyond {@link Hypervisor}'s:
 *
 * <ul>
 *   <li>A capture is classic image fleecing, started for all disks of the VM by one QMP {@code
 *       transaction}; the guest is never paused. The NBD socket lives in the request's work
 *       directory (or a private temporary directory when that path is too long for a Unix socket).
 *   <li>A disk is incremental when the bitmap {@code sinceCheckpoint} exists on its node, is
 *       persistent and is not inconsistent; otherwise it is full and its export says why.
 *   <li>Checkpoint names must start with the checkpoint prefix ({@value #CHECKPOINT_PREFIX} by
 *       default). Bitmaps with that prefix other than {@code sinceCheckpoint} are leftovers of ours
 *       and are removed by the next capture (after merging into {@code sinceCheckpoint} what an
 *       interrupted capture would otherwise lose); other bitmaps are never touched.
 *   <li>One capture per VM at a time (QEMU runs one NBD server per process); a second one is a
 *       {@link RetriableException}. This class keeps one QMP connection per VM, since QEMU serves one
 *       client per monitor socket: nothing else may hold {@code <vm>.qmp} open.
 *   <li>One worker per host: a capture treats exports, block jobs and scratch nodes carrying this
 *       adapter's id prefixes as leftovers of a crashed worker and removes them first.
 *   <li>A VM without a socket is unknown here: a {@link PermanentException}. A socket nobody answers
 *       on is a {@link RetriableException}.
 *   <li>Every fault is a {@link RetriableException} or a {@link PermanentException} whose message
 *       names the VM and the socket.
 * </ul>
 */
public final class QmpHypervisor implements Hypervisor {

    private static final Logger log = LoggerFactory.getLogger(QmpHypervisor.class);

    /** The prefix of the checkpoint bitmaps this engine creates. */
    public static final String CHECKPOINT_PREFIX = "tm-";

    private static final String SOCKET_SUFFIX = ".qmp";
    private static final Pattern BUSY = Pattern.compile("(?i)in use|busy");
    private static final Pattern VM_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    private final Path socketDir;
    private final Clock clock;
    private final String checkpointPrefix;
    private final Duration timeout;
    private final Map<String, QmpClient> clients = new HashMap<>(); // guarded by this
    private final Set<String> capturing = ConcurrentHashMap.newKeySet();
    private final Map<String, QmpCapture> open = new ConcurrentHashMap<>();

    /** The VMs whose QMP sockets are in {@code socketDir}, with the system clock. */
    public QmpHypervisor(Path socketDir) {
        this(socketDir, Clock.systemUTC(), CHECKPOINT_PREFIX, QmpClient.DEFAULT_TIMEOUT);
    }

    /**
     * @param clock gives {@link Capture#capturedAt()}
     * @param checkpointPrefix the prefix every checkpoint name of this engine has
     * @param timeout for each QMP command and each awaited QEMU event
     */
    public QmpHypervisor(Path socketDir, Clock clock, String checkpointPrefix, Duration timeout) {
        if (checkpointPrefix.isEmpty()) {
            throw new IllegalArgumentException("the checkpoint prefix must not be empty: it tells our bitmaps apart");
        }
        this.socketDir = socketDir;
        this.clock = clock;
        this.checkpointPrefix = checkpointPrefix;
        this.timeout = timeout;
    }

    /** The socket QEMU must be started with for {@code vm}: {@code -qmp unix:<that>,server=on,wait=off}. */
    public Path socketOf(String vm) {
        return socketDir.resolve(vm + SOCKET_SUFFIX);
    }

    /**
     * The VMs whose socket answers now, sorted by name. A socket that does not answer (a VM that is
     * gone, or whose monitor is held by another client) is skipped and logged.
     */
    @Override
    public List<VmInfo> list() {
        List<String> vms;
        try (Stream<Path> files = Files.list(socketDir)) {
            vms = files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(SOCKET_SUFFIX))
                    .map(n -> n.substring(0, n.length() - SOCKET_SUFFIX.length()))
                    .filter(n -> VM_NAME.matcher(n).matches())
                    .sorted()
                    .toList();
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot list the QMP socket directory " + socketDir + ": " + e
                            + "; check the worker's configuration and permissions",
                    e);
        }
        List<VmInfo> out = new ArrayList<>();
        for (String vm : vms) {
            try {
                List<BlockDevice> devices = BlockDevice.parse(liveClient(vm).execute("query-block"));
                out.add(new VmInfo(vm, devices.stream().map(d -> disk(vm, d)).toList()));
            } catch (RetriableException e) {
                log.info("VM {} skipped: {}", vm, e.getMessage());
            }
        }
        return out;
    }

    /** While our capture runs, the fleece filter hides the disk's node; report the node it captured. */
    private DiskInfo disk(String vm, BlockDevice d) {
        QmpCapture c = open.get(vm);
        if (d.underJobFilter() && c != null) {
            return c.devices().stream()
                    .filter(x -> x.disk().equals(d.disk()))
                    .findFirst()
                    .map(BlockDevice::info)
                    .orElse(d.info());
        }
        return d.info();
    }

    @Override
    public Capture capture(CaptureRequest request) {
        String vm = request.vm();
        validate(request);
        if (!Files.exists(socketOf(vm))) {
            throw new PermanentException("no VM '" + vm + "' on this host: there is no QMP socket " + socketOf(vm)
                    + "; check the VM's name, and that its QEMU runs with -qmp unix:" + socketOf(vm)
                    + ",server=on,wait=off");
        }
        if (!capturing.add(vm)) {
            throw new RetriableException("a capture of VM '" + vm + "' is already open on this host (QEMU runs one"
                    + " NBD server per VM); retry when it is closed");
        }
        try {
            QmpClient qmp = liveClient(vm);
            QmpCapture c = QmpCapture.open(qmp, request, clock, checkpointPrefix, timeout, () -> {
                open.remove(vm);
                capturing.remove(vm);
            });
            open.put(vm, c);
            return c;
        } catch (TidemarkException e) {
            capturing.remove(vm);
            boolean retriable = e.retriable()
                    || (e instanceof QmpException q
                            && BUSY.matcher(q.description()).find());
            String msg = "capture of VM '" + vm + "' (QMP socket " + socketOf(vm) + ") failed: " + e.getMessage()
                    + (retriable ? "; the job may be retried" : "");
            throw retriable ? new RetriableException(msg, e) : new PermanentException(msg, e);
        }
    }

    private void validate(CaptureRequest r) {
        if (!VM_NAME.matcher(r.vm()).matches()) {
            throw new PermanentException("'" + r.vm() + "' is not a valid VM name (letters, digits, '.', '_', '-')");
        }
        if (!r.newCheckpoint().startsWith(checkpointPrefix) || r.newCheckpoint().length() > 1023) {
            throw new PermanentException("checkpoint name '" + r.newCheckpoint() + "' for VM '" + r.vm()
                    + "' must start with '" + checkpointPrefix + "' (and be at most 1023 characters), so that"
                    + " leftovers can be told apart from other tools' bitmaps");
        }
        if (r.sinceCheckpoint().filter(r.newCheckpoint()::equals).isPresent()) {
            throw new PermanentException("capture of VM '" + r.vm() + "': the new checkpoint " + r.newCheckpoint()
                    + " must differ from the parent checkpoint");
        }
        if (!Files.isDirectory(r.workDir())) {
            throw new PermanentException("the work directory " + r.workDir() + " for the capture of VM '" + r.vm()
                    + "' does not exist; create it first");
        }
    }

    /** The VM's connection, reconnecting once when QEMU was restarted since it was opened. */
    private QmpClient liveClient(String vm) {
        QmpClient c = client(vm);
        try {
            c.execute("query-status");
            return c;
        } catch (RetriableException e) {
            if (c.isOpen()) {
                throw e;
            }
            log.debug("QMP connection to {} was lost ({}); reconnecting", vm, e.getMessage());
            QmpClient fresh = client(vm);
            fresh.execute("query-status");
            return fresh;
        }
    }

    private synchronized QmpClient client(String vm) {
        QmpClient c = clients.get(vm);
        if (c != null && c.isOpen()) {
            return c;
        }
        if (c != null) {
            c.close();
        }
        c = QmpClient.connect(socketOf(vm), timeout);
        clients.put(vm, c);
        return c;
    }

    /** Closes the QMP connections. Close open captures first: they use them. */
    @Override
    public synchronized void close() {
        clients.values().forEach(QmpClient::close);
        clients.clear();
    }

    @Override
    public String toString() {
        return "QmpHypervisor[" + socketDir + "]";
    }
}
