package io.tidemark.workers.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.ConsistencyNotMetException;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.DiskSwitch;
import io.tidemark.core.hypervisor.GuestAgent;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.core.hypervisor.VmNotFoundException;
import io.tidemark.workers.GuestFreezer;
import io.tidemark.workers.qga.QgaGuestAgent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.Function;
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
 *   <li>A capture is image fleecing. On QEMU 7.1+ a guest write waits at most {@link #cbwTimeout}
 *       for the copy of its old data into the scratch image (an explicit copy-before-write filter
 *       with {@code on-cbw-error: break-snapshot}); past it the snapshot is given up and the job
 *       fails and is retried, never making a restore point of it. The guest is paused for the few
 *       milliseconds the filters take to insert. Without that feature (or with the bound off) it is
 *       classic fleecing, started for all disks by one QMP {@code transaction}, never pausing the
 *       guest, and a guest write waits for its copy however long it takes. The NBD socket lives in the request's work
 *       directory (or a private temporary directory when that path is too long for a Unix socket).
 *   <li>A disk is incremental when the bitmap {@code sinceCheckpoint} exists on its node, is
 *       persistent and is not inconsistent; otherwise it is full and its export says why.
 *   <li>Checkpoint names must start with the checkpoint prefix ({@value #CHECKPOINT_PREFIX} by
 *       default). A request with an {@link CaptureRequest#owner() owner} owns the bitmaps named
 *       {@code <prefix><owner>-...}: those other than {@code sinceCheckpoint} are leftovers of its
 *       interrupted captures and are removed by its next capture (after merging into {@code
 *       sinceCheckpoint} what an interrupted capture would otherwise lose). Bitmaps of other owners,
 *       unowned {@code tm-<id>} bitmaps of earlier versions, and other tools' bitmaps are never
 *       touched. A request without owner takes every bitmap with the prefix as its own.
 *   <li>One capture per VM at a time (QEMU runs one NBD server per process); a second one is a
 *       {@link RetriableException}, also when it comes from another process.
 *   <li>The monitor is shared politely: QEMU serves one client per {@code -qmp} socket, so this
 *       adapter connects for each capture (the connection lives as long as the capture) and for each
 *       listing or query (closed at once) and holds nothing between them; operators' tools and
 *       monitoring agents may use {@code <vm>.qmp} between jobs. While a capture of the VM is open,
 *       listings use its connection.
 *   <li>Every wait on QEMU (connect, greeting, each command, each awaited event, NBD reads) has the
 *       adapter's timeout: a stopped or hung QEMU fails the capture with a {@link
 *       RetriableException} that says so, within a bound. {@link Capture#close()} may be called from
 *       another thread to cancel a job: it tears down on the capture's connection (one timeout at
 *       most when QEMU does not answer) and unblocks NBD readers by deleting the exports.
 *   <li>Exports, block jobs, scratch nodes and scratch files carry a {@link
 *       io.tidemark.core.hypervisor.HostScratch} tag of the creating process. The first connection
 *       to a VM (a listing or a capture) removes those whose capture is over (its process is gone)
 *       and never those of a live capture of another process.
 *   <li>Application consistency ({@link io.tidemark.core.hypervisor.ConsistencyPolicy}): the guest agent of
 *       VM {@code <vm>} is reached on the socket {@code <vm>.qga} next to its QMP socket (see {@link
 *       #agentSocketOf}); the guest is frozen just before the transaction and thawed right after
 *       (ping, freeze, transaction, thaw), with the guarantees of {@link GuestFreezer}: a watchdog,
 *       and markers in the state directory that {@link #thawLeftovers()} acts on when the worker
 *       starts.
 *
 *   <li>{@link #list()} reports a VM whose monitor listens but does not answer in time (another
 *       client holds it, or QEMU is stopped) as it last answered, so a busy monitor does not make
 *       the VM look gone; a VM that never answered, or whose socket refuses connections, is skipped.
 *   <li>A VM without a socket is unknown here: a {@link PermanentException}. A socket nobody answers
 *       on is a {@link RetriableException}.
 *   <li>Every fault is a {@link RetriableException} or a {@link PermanentException} whose message
 *       names the VM and the socket.
 * </ul>
 */
public final class QmpHypervisor implements Hypervisor, DiskSwitch {

    private static final Logger log = LoggerFactory.getLogger(QmpHypervisor.class);

    /** The prefix of the checkpoint bitmaps this engine creates. */
    public static final String CHECKPOINT_PREFIX = "tm-";

    private static final String SOCKET_SUFFIX = ".qmp";
    private static final String AGENT_SUFFIX = ".qga";
    private static final Pattern BUSY = Pattern.compile("(?i)in use|busy");
    private static final Pattern VM_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    private final Path socketDir;
    private final Clock clock;
    private final String checkpointPrefix;
    private final Duration timeout;
    /** VMs this adapter has connected to once, and so swept of leftovers of dead captures. */
    private final Set<String> swept = ConcurrentHashMap.newKeySet();

    /** Each VM as it last answered a listing: a VM whose monitor is busy or stopped is listed so. */
    private final Map<String, VmInfo> lastSeen = new ConcurrentHashMap<>();

    private final Set<String> capturing = ConcurrentHashMap.newKeySet();
    private final Map<String, QmpCapture> open = new ConcurrentHashMap<>();
    private final GuestFreezer freezer;
    private final Function<String, GuestAgent> agents;
    private volatile Consumer<String> onFrozen = vm -> {};
    private volatile QmpCapture.Options captureOptions = new QmpCapture.Options(DEFAULT_CBW_TIMEOUT, 0);

    /** How long a guest write waits at most for its copy-before-write unless {@link #cbwTimeout} says. */
    public static final Duration DEFAULT_CBW_TIMEOUT = Duration.ofSeconds(10);

    /**
     * The VMs whose QMP sockets are in {@code socketDir}, with the system clock; freeze markers in
     * a directory under {@code java.io.tmpdir} named after the socket directory (it survives a
     * worker restart, not a host reboot, which ends the VMs' freezes too).
     */
    public QmpHypervisor(Path socketDir) {
        this(socketDir, defaultStateDir(socketDir));
    }

    /** As {@link #QmpHypervisor(Path)}, with the freeze markers in {@code stateDir}. */
    public QmpHypervisor(Path socketDir, Path stateDir) {
        this(socketDir, Clock.systemUTC(), CHECKPOINT_PREFIX, QmpClient.DEFAULT_TIMEOUT, new GuestFreezer(stateDir));
    }

    /**
     * @param clock gives {@link Capture#capturedAt()}
     * @param checkpointPrefix the prefix every checkpoint name of this engine has
     * @param timeout for each QMP command and each awaited QEMU event
     */
    public QmpHypervisor(Path socketDir, Clock clock, String checkpointPrefix, Duration timeout) {
        this(socketDir, clock, checkpointPrefix, timeout, new GuestFreezer(defaultStateDir(socketDir)));
    }

    /**
     * @param freezer freezes guests around the snapshot moment (its state directory holds the
     *     "frozen by us" markers)
     */
    public QmpHypervisor(Path socketDir, Clock clock, String checkpointPrefix, Duration timeout, GuestFreezer freezer) {
        if (checkpointPrefix.isEmpty()) {
            throw new IllegalArgumentException("the checkpoint prefix must not be empty: it tells our bitmaps apart");
        }
        this.socketDir = socketDir;
        this.clock = clock;
        this.checkpointPrefix = checkpointPrefix;
        this.timeout = timeout;
        this.freezer = freezer;
        this.agents = vm -> new QgaGuestAgent(vm, agentSocketOf(vm));
    }

    private static Path defaultStateDir(Path socketDir) {
        String key = HexFormat.of()
                .toHexDigits(socketDir.toAbsolutePath().normalize().toString().hashCode());
        return Path.of(System.getProperty("java.io.tmpdir"), "tidemark-freeze-" + key);
    }

    /**
     * The socket of {@code vm}'s guest agent: QEMU must be started with {@code -chardev
     * socket,path=<that>,server=on,wait=off,id=qga0 -device virtio-serial-pci -device
     * virtserialport,chardev=qga0,name=org.qemu.guest_agent.0}.
     */
    public Path agentSocketOf(String vm) {
        return socketDir.resolve(vm + AGENT_SUFFIX);
    }

    /** The guest agent of {@code vm} (whether one answers there or not). */
    public QgaGuestAgent agentOf(String vm) {
        return new QgaGuestAgent(vm, agentSocketOf(vm));
    }

    /**
     * Thaws every VM that a worker before this one froze and did not thaw (it died between freeze
     * and thaw); call it when the worker starts.
     *
     * @return the VMs thawed
     */
    public List<String> thawLeftovers() {
        return freezer.thawLeftovers(agents);
    }

    /**
     * Sets a hook that runs right after a guest was frozen and before the snapshot transaction,
     * with the VM's name: for tests and fault drills (observe the frozen guest, or halt the JVM
     * there).
     */
    public void onFrozen(Consumer<String> hook) {
        this.onFrozen = hook;
    }

    /**
     * Bounds how long a guest write waits for the copy of the old data into a capture's scratch
     * image (default {@link #DEFAULT_CBW_TIMEOUT}; whole seconds, rounded up): past it the write goes
     * ahead, the capture's snapshot is given up and its job fails and is retried. {@link
     * Duration#ZERO} turns the bound off (the classic fleece job, where a guest write waits however
     * long the scratch takes), as does a QEMU older than 7.1, which has no such bound.
     *
     * @throws IllegalArgumentException if negative or between 0 and 1 s
     */
    public void cbwTimeout(Duration timeout) {
        captureOptions = new QmpCapture.Options(timeout, captureOptions.scratchBytesPerSecond());
    }

    /**
     * For tests and fault drills: every capture from now on writes its scratch images through a QEMU
     * throttle at {@code bytesPerSecond} (a slow scratch disk); 0 = full speed.
     */
    public void throttleScratch(long bytesPerSecond) {
        captureOptions = new QmpCapture.Options(captureOptions.cbwTimeout(), bytesPerSecond);
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
            VmInfo opening = lastSeen.get(vm);
            if (opening != null && capturing.contains(vm) && !open.containsKey(vm)) {
                out.add(opening); // a capture is being opened: its connection holds the monitor for a moment
                continue;
            }
            try {
                List<BlockDevice> devices = BlockDevice.parse(query(vm, "query-block"));
                VmInfo info =
                        new VmInfo(vm, devices.stream().map(d -> disk(vm, d)).toList());
                lastSeen.put(vm, info);
                out.add(info);
            } catch (QmpClient.Unanswered e) {
                // the VM is there (its monitor listens) but busy with another client, or stopped: as last seen
                VmInfo seen = lastSeen.get(vm);
                if (seen != null) {
                    out.add(seen);
                }
                log.info("VM {} {}: {}", vm, seen != null ? "listed as last seen" : "skipped", e.getMessage());
            } catch (RetriableException e) {
                lastSeen.remove(vm);
                log.info("VM {} skipped: {}", vm, e.getMessage());
            }
        }
        lastSeen.keySet().retainAll(vms);
        return out;
    }

    /**
     * Runs one command on {@code vm}: on the connection of its open capture if there is one (the
     * monitor serves one client), otherwise on a connection made for it and closed at once. The
     * first connection of this adapter to a VM also removes what captures of processes now gone
     * left in its QEMU.
     */
    private JsonNode query(String vm, String command) {
        QmpCapture c = open.get(vm);
        if (c != null) {
            try {
                return c.qmp().execute(command);
            } catch (RetriableException e) {
                if (open.get(vm) == c) {
                    throw e;
                }
                // the capture closed meanwhile, and with it its connection: connect ourselves
            }
        }
        try (QmpClient qmp = connect(vm)) {
            return qmp.execute(command);
        }
    }

    /** A connection of its own to {@code vm}'s monitor; the caller closes it when its work is done. */
    private QmpClient connect(String vm) {
        QmpClient qmp = QmpClient.connect(socketOf(vm), timeout);
        if (swept.add(vm)) {
            try {
                QmpCapture.removeLeftovers(qmp, vm, timeout);
            } catch (TidemarkException e) {
                swept.remove(vm);
                log.warn("VM {}: could not remove what interrupted captures left: {}", vm, e.getMessage());
                if (!qmp.isOpen()) {
                    throw e;
                }
            }
        }
        return qmp;
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
            throw new VmNotFoundException("no VM '" + vm + "' on this host: there is no QMP socket " + socketOf(vm)
                    + "; check the VM's name, and that its QEMU runs with -qmp unix:" + socketOf(vm)
                    + ",server=on,wait=off");
        }
        if (!capturing.add(vm)) {
            throw new RetriableException("a capture of VM '" + vm + "' is already open on this host (QEMU runs one"
                    + " NBD server per VM); retry when it is closed");
        }
        try {
            // a connection of the capture's own, closed with it: between jobs the monitor is free
            QmpClient qmp = QmpClient.connect(socketOf(vm), timeout);
            swept.add(vm); // the capture removes leftovers first anyway
            GuestAgent agent = agents.apply(vm);
            Function<Runnable, CaptureConsistency> quiesce =
                    snapshot -> freezer.around(vm, request.quiesce(), agent, snapshot, onFrozen);
            QmpCapture c =
                    QmpCapture.open(qmp, request, clock, checkpointPrefix, timeout, quiesce, captureOptions, () -> {
                        open.remove(vm);
                        capturing.remove(vm);
                    });
            open.put(vm, c);
            return c;
        } catch (ConsistencyNotMetException | VmNotFoundException e) { // typed: the worker reports their reason
            capturing.remove(vm);
            throw e;
        } catch (TidemarkException e) {
            capturing.remove(vm);
            boolean retriable = e.retriable()
                    || (e instanceof QmpException q
                            && BUSY.matcher(q.description()).find());
            String msg = "capture of VM '" + vm + "' (QMP socket " + socketOf(vm) + ") failed: " + e.getMessage()
                    + (retriable ? "; the job may be retried" : "");
            throw retriable ? new RetriableException(msg, e) : new PermanentException(msg, e);
        } catch (RuntimeException e) {
            capturing.remove(vm);
            throw e;
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

    /**
     * The image file of each disk of {@code vm}, by disk name, as QEMU opened it ({@code
     * query-block}'s {@code inserted.file}).
     */
    @Override
    public Optional<DiskSwitch> diskSwitch() {
        return Optional.of(this);
    }

    @Override
    public Map<String, Path> imageFiles(String vm) {
        Map<String, Path> out = new java.util.TreeMap<>();
        for (JsonNode dev : query(vm, "query-block")) {
            JsonNode inserted = dev.get("inserted");
            String qdev = dev.path("qdev").asText("");
            if (inserted != null && !qdev.isEmpty()) {
                out.put(
                        BlockDevice.diskName(qdev),
                        Path.of(inserted.path("file").asText()));
            }
        }
        return out;
    }

    /**
     * Returns {@code vm} to other disk contents without restarting its QEMU: pauses the guest, moves
     * each named disk onto its new image (a {@code blockdev-mirror sync=none} pivoted at once, which
     * copies nothing while the guest is paused), resets the machine and lets it run, so the guest
     * boots from the new contents. The previous images stay on disk as they were; their dirty
     * bitmaps stay with them, so the next capture of the VM reads its disks in full.
     *
     * @param images the new qcow2 image of each disk to switch, by disk name; each must have the
     *     disk's virtual size
     * @throws PermanentException if QEMU refuses a step; disks switched before it stay switched and
     *     the guest is let run again
     */
    @Override
    public void switchDisks(String vm, Map<String, Path> images) {
        try (QmpClient qmp = connect(vm)) {
            switchDisks(qmp, vm, images);
        }
    }

    private void switchDisks(QmpClient qmp, String vm, Map<String, Path> images) {
        Map<String, String> nodes = new HashMap<>();
        for (BlockDevice d : BlockDevice.parse(qmp.execute("query-block"))) {
            nodes.put(d.disk(), d.node());
        }
        qmp.execute("stop");
        try {
            for (Map.Entry<String, Path> e : images.entrySet()) {
                String node = nodes.get(e.getKey());
                if (node == null) {
                    throw new PermanentException(
                            "VM '" + vm + "' has no disk '" + e.getKey() + "'; it has " + nodes.keySet());
                }
                switchDisk(qmp, e.getKey(), node, e.getValue());
            }
            qmp.execute("system_reset");
        } catch (QmpException e) {
            throw new PermanentException(
                    "cannot switch the disks of VM '" + vm + "' (QMP socket " + socketOf(vm) + "): " + e.getMessage(),
                    e);
        } finally {
            qmp.execute("cont");
        }
    }

    private void switchDisk(QmpClient qmp, String disk, String node, Path image) {
        String target = "tmrb-" + Long.toString(clock.millis() % 1_000_000_000L, 36) + "-" + disk;
        ObjectNode add = QmpClient.args().put("driver", "qcow2").put("node-name", target);
        add.putObject("file")
                .put("driver", "file")
                .put("filename", image.toAbsolutePath().toString());
        qmp.execute("blockdev-add", add);
        String job = target;
        qmp.execute(
                "blockdev-mirror",
                QmpClient.args()
                        .put("job-id", job)
                        .put("device", node)
                        .put("target", target)
                        .put("sync", "none"));
        qmp.awaitEvent(
                "BLOCK_JOB_READY",
                ev -> job.equals(ev.path("data").path("device").asText()),
                timeout);
        qmp.execute("job-complete", QmpClient.args().put("id", job));
        JsonNode done = qmp.awaitEvent(
                "BLOCK_JOB_COMPLETED",
                ev -> job.equals(ev.path("data").path("device").asText()),
                timeout);
        if (done.path("data").has("error")) {
            throw new PermanentException("switching disk '" + disk + "' to " + image + " failed: "
                    + done.path("data").path("error").asText());
        }
        log.info("disk {} now runs on {} (node {})", disk, image, target);
    }

    /**
     * Holds no connection between uses, so there is nothing to close but captures still open: they
     * are abandoned as a crash would leave them (their connections dropped, everything in QEMU left
     * for the next capture to remove). Close captures first.
     */
    @Override
    public void close() {
        for (QmpCapture c : List.copyOf(open.values())) {
            log.warn("VM {}: the adapter is closed under an open capture; it is abandoned", c.vm());
            c.abandon();
        }
    }

    @Override
    public String toString() {
        return "QmpHypervisor[" + socketDir + "]";
    }
}
