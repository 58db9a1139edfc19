package io.tidemark.workers.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureConsistency;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.ChangedRange;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.nbd.NbdClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One open capture of one VM (image fleecing, recipe §4b), in one of two ways:
 *
 * <ul>
 *   <li><b>Bounded</b> (QEMU 7.1+, when {@link Options#cbwTimeout()} is set): per disk an explicit
 *       {@code copy-before-write} filter with {@code on-cbw-error: break-snapshot} and {@code
 *       cbw-timeout}, which copies old data into a scratch qcow2 before the guest overwrites it,
 *       put under the guest device with {@code qom-set drive}; a {@code snapshot-access} node gives
 *       the point-in-time view the read-only NBD export reads. A guest write never waits longer
 *       than the timeout for its copy: then it goes ahead and the snapshot is broken (its reads
 *       fail; {@link #verifyIntact()} says so). Filters are not transactional, so the guest is
 *       paused ({@code stop}/{@code cont}) while they are inserted, which keeps the disks of the VM
 *       consistent with each other; the new checkpoint starts before and the old one stops after,
 *       so a write the pause did not hold back is in one of them; a marker object in QEMU lets a later
 *       process continue a VM whose capturing process died in that window.
 *   <li><b>Unbounded</b> (classic, the fallback when QEMU lacks the feature or the bound is off): per
 *       disk a scratch qcow2 whose backing is the live node and a {@code blockdev-backup sync=none}
 *       job, whose implicit filter makes a guest write wait for its copy however long it takes; all
 *       started by one {@code transaction}, which also rotates the checkpoint bitmaps.
 * </ul>
 *
 * <p>{@link #close()} tears everything down in reverse order and settles the bitmaps: after {@link
 * #commit()} the old checkpoint is removed; otherwise the new checkpoint is merged back into the old
 * one, which records again, so that no change is lost.
 */
final class QmpCapture implements Capture {

    private static final Logger log = LoggerFactory.getLogger(QmpCapture.class);

    /** Node, job and export ids of ours start with these, so leftovers can be found after a crash. */
    static final String SCRATCH_PREFIX = "tmfl-";

    static final String JOB_PREFIX = "tmjob-";
    static final String EXPORT_PREFIX = "tmexp-";
    static final String FLEECE_FILE_PREFIX = "fleece-";

    /** QEMU's {@code cbw-timeout} is whole seconds. */
    private static final Duration MIN_CBW_TIMEOUT = Duration.ofSeconds(1);

    /** VMs already told in the log that their QEMU cannot bound copy-before-write. */
    private static final Set<String> TOLD_UNBOUNDED = ConcurrentHashMap.newKeySet();

    /**
     * How a capture protects the guest.
     *
     * @param cbwTimeout how long a guest write may wait for the copy of the old data into the
     *     scratch image before it goes ahead and the snapshot is given up; zero = unbounded (the
     *     classic fleece job)
     * @param scratchBytesPerSecond for tests and fault drills: the scratch images are written
     *     through a QEMU throttle at this rate (a slow scratch); 0 = not throttled
     */
    record Options(Duration cbwTimeout, long scratchBytesPerSecond) {
        Options {
            if (cbwTimeout.isNegative() || (!cbwTimeout.isZero() && cbwTimeout.compareTo(MIN_CBW_TIMEOUT) < 0)) {
                throw new IllegalArgumentException(
                        "the copy-before-write timeout must be zero (off) or at least 1s," + " not " + cbwTimeout);
            }
            if (scratchBytesPerSecond < 0) {
                throw new IllegalArgumentException("scratchBytesPerSecond must not be negative");
            }
        }

        boolean bounded() {
            return !cbwTimeout.isZero();
        }

        /** QEMU's {@code cbw-timeout}: whole seconds, rounded up. */
        long cbwTimeoutSeconds() {
            return (cbwTimeout.toMillis() + 999) / 1000;
        }
    }

    private static final Pattern NOT_PERSISTABLE = Pattern.compile("Can't make bitmap '[^']*' persistent in '([^']*)'");
    private static final int MAX_SOCKET_PATH = 100;
    private static final Set<String> JOB_END_EVENTS = Set.of("BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED");

    private final String vm;
    private final QmpClient qmp;
    private final Optional<String> since;
    /** The disks read only by their changed blocks since {@link #since} (see {@link CaptureRequest#changesOnly()}). */
    private final CaptureRequest.ChangesOnly changesOnly;
    /**
     * Disk index → our bitmap of the blocks it is read by (the old checkpoint at the reader's block
     * size), for the disks whose copy-before-write copies only those blocks.
     */
    private final Map<Integer, String> changedBlocks = new TreeMap<>();

    private final String newCheckpoint;
    private final Duration eventTimeout; // also bounds each wait of teardown
    private final Runnable onClosed;
    private final Function<Runnable, CaptureConsistency> quiesce;
    private final Options options;
    /** True when this capture uses explicit copy-before-write filters (bounded); false: the classic job. */
    private boolean bounded;
    /** The guest device (QOM path) of each disk, by its node: what {@code qom-set drive} moves. */
    private final java.util.Map<String, String> qdevOfNode = new java.util.HashMap<>();
    /** Per disk, the node the copy-before-write job or filter writes into (the scratch, or its throttle). */
    private final List<String> targetNodes = new ArrayList<>();

    private final List<String> filterNodes = new ArrayList<>();
    private final List<Integer> switchedDisks = new ArrayList<>();
    private final List<String> snapshotNodes = new ArrayList<>();
    private final List<String> throttleNodes = new ArrayList<>();
    private String throttleGroup;
    private String pauseMarker;
    private boolean pausedByUs;
    /** Names everything this capture creates on the host, so that a later process can tell leftovers. */
    private final String token = HostScratch.newTag();

    private List<CapturePlan.Disk> disks = List.of();
    /** RBD snapshots as change tracking for the disks on Ceph (ADR 18); null until planned. */
    private RbdCheckpoints rbd;

    private final List<Path> scratchFiles = new ArrayList<>();
    private final List<String> scratchNodes = new ArrayList<>();
    private final List<String> jobs = new ArrayList<>();
    private final List<String> exportIds = new ArrayList<>();
    private boolean transactionDone;
    private boolean serverStarted;
    private Path nbdSocket;
    private Path privateSocketDir;
    private Instant capturedAt;
    private VmDefinition definition;
    private CaptureConsistency consistency = CaptureConsistency.crash();
    private List<DiskExport> exports = List.of();
    private volatile boolean committed;
    private boolean closed;

    private QmpCapture(
            String vm,
            QmpClient qmp,
            CaptureRequest request,
            Duration eventTimeout,
            Function<Runnable, CaptureConsistency> quiesce,
            Options options,
            Runnable onClosed) {
        this.vm = vm;
        this.options = options;
        this.quiesce = quiesce;
        this.qmp = qmp;
        this.since = request.sinceCheckpoint();
        this.changesOnly = request.changesOnly();
        this.newCheckpoint = request.newCheckpoint();
        this.eventTimeout = eventTimeout;
        this.onClosed = onClosed;
    }

    /**
     * Repairs leftovers of an interrupted capture, then captures and exports every disk. On failure
     * everything created is torn down and the bitmaps are as they were.
     *
     * @param quiesce runs the snapshot transaction it is given, with the guest frozen as the request
     *     asks, and returns the consistency achieved
     */
    static QmpCapture open(
            QmpClient qmp,
            CaptureRequest request,
            Clock clock,
            String checkpointPrefix,
            Duration eventTimeout,
            Function<Runnable, CaptureConsistency> quiesce,
            Options options,
            Runnable onClosed) {
        QmpCapture c = new QmpCapture(request.vm(), qmp, request, eventTimeout, quiesce, options, onClosed);
        try {
            c.start(request, clock, request.leftoverPrefix(checkpointPrefix));
            return c;
        } catch (RuntimeException e) { // also a bug or a hook's failure: never leave exports behind
            try {
                c.teardown();
            } catch (RuntimeException t) {
                e.addSuppressed(t);
            }
            throw e;
        }
    }

    private void start(CaptureRequest request, Clock clock, String prefix) {
        // first: a leftover fleece job hides the disk node behind its copy-before-write filter
        removeLeftovers(qmp, vm, eventTimeout);
        List<BlockDevice> devices = BlockDevice.parse(qmp.execute("query-block"));
        if (devices.isEmpty()) {
            throw new PermanentException("VM '" + vm + "' has no disk (no block device with a medium and a guest"
                    + " device in query-block); nothing to capture");
        }
        for (BlockDevice d : devices) {
            if (d.underJobFilter() && d.node().startsWith(SCRATCH_PREFIX)) {
                throw new RetriableException("disk " + d.disk() + " of VM '" + vm + "' is being captured by another"
                        + " live capture of this engine (another repository's worker protects it too); retry when it"
                        + " has finished");
            }
            if (d.underJobFilter()) {
                throw new RetriableException("disk " + d.disk() + " of VM '" + vm + "' is in use by a block job of"
                        + " another tool (its root node is a " + d.driver() + " filter); retry when it has finished");
            }
        }
        try {
            definition = QmpDefinition.read(qmp, devices);
        } catch (QmpException e) { // the point is still worth taking without it
            log.warn("VM {}: cannot read its definition over QMP, the point will have none: {}", vm, e.getMessage());
        }
        List<ObjectNode> repair = CapturePlan.repairActions(devices, since, newCheckpoint, prefix);
        if (!repair.isEmpty()) {
            transaction(repair);
            log.info("VM {}: repaired the checkpoints left by an interrupted capture: {}", vm, repair);
            devices = BlockDevice.parse(qmp.execute("query-block"));
        }
        disks = devices.stream().map(d -> CapturePlan.plan(d, since)).toList();
        rbd = RbdCheckpoints.open(vm, disks, since, newCheckpoint, prefix);
        bounded = options.bounded() && canBound();

        if (options.scratchBytesPerSecond() > 0) {
            throttleGroup = SCRATCH_PREFIX + token + "-tg";
            ObjectNode tg = QmpClient.args().put("qom-type", "throttle-group").put("id", throttleGroup);
            tg.putObject("limits").put("bps-write", options.scratchBytesPerSecond());
            qmp.execute("object-add", tg);
        }
        for (int i = 0; i < disks.size(); i++) {
            BlockDevice d = disks.get(i).device();
            Path file = request.workDir().toAbsolutePath().resolve(FLEECE_FILE_PREFIX + token + "-" + i + ".qcow2");
            createImage(file, d.sizeBytes());
            scratchFiles.add(file);
            String node = SCRATCH_PREFIX + token + "-" + i;
            ObjectNode add = QmpClient.args().put("driver", "qcow2").put("node-name", node);
            add.putObject("file").put("driver", "file").put("filename", file.toString());
            if (!bounded) {
                add.put("backing", d.node()); // classic fleecing reads unchanged data through to the disk
            }
            qmp.execute("blockdev-add", add);
            scratchNodes.add(node);
            String target = node;
            if (throttleGroup != null) {
                target = SCRATCH_PREFIX + token + "-t" + i;
                qmp.execute(
                        "blockdev-add",
                        QmpClient.args()
                                .put("driver", "throttle")
                                .put("node-name", target)
                                .put("throttle-group", throttleGroup)
                                .put("file", node));
                throttleNodes.add(target);
            }
            targetNodes.add(target);
        }

        // before the capture's instant, so the base holds no write made after it; outside the guest's
        // freeze, which a slow Ceph must not stretch (writes in between are merely read again next time)
        rbd.takeBase();
        consistency = quiesce.apply(() -> {
            if (bounded) {
                insertFilters();
            } else {
                fleece();
            }
            capturedAt = clock.instant();
        });
        if (bounded) {
            for (int i = 0; i < disks.size(); i++) {
                String snap = SCRATCH_PREFIX + token + "-s" + i;
                qmp.execute(
                        "blockdev-add",
                        QmpClient.args()
                                .put("driver", "snapshot-access")
                                .put("node-name", snap)
                                .put("file", filterNodes.get(i)));
                snapshotNodes.add(snap);
            }
        }
        List<Optional<List<ChangedRange>>> changed = new ArrayList<>();
        for (int i = 0; i < disks.size(); i++) {
            changed.add(rbd.diffs(i, disks.get(i)) ? rbd.changes(i) : Optional.empty());
        }

        startServer(request.workDir());
        List<DiskExport> out = new ArrayList<>();
        for (int i = 0; i < disks.size(); i++) {
            CapturePlan.Disk p = disks.get(i);
            String id = EXPORT_PREFIX + token + "-" + i;
            ObjectNode exp = QmpClient.args()
                    .put("type", "nbd")
                    .put("id", id)
                    .put("node-name", bounded ? snapshotNodes.get(i) : scratchNodes.get(i))
                    .put("name", p.device().disk())
                    .put("writable", false);
            if (p.incremental()) {
                exp.putArray("bitmaps")
                        .addObject()
                        .put("node", p.device().node())
                        .put("name", since.orElseThrow());
            }
            qmp.execute("block-export-add", exp);
            exportIds.add(id);
            Optional<List<ChangedRange>> ranges = changed.get(i);
            out.add(new DiskExport(
                    p.device().disk(),
                    p.device().sizeBytes(),
                    nbdSocket,
                    p.device().disk(),
                    p.incremental() ? Optional.of("qemu:dirty-bitmap:" + since.orElseThrow()) : Optional.empty(),
                    ranges.isPresent() ? Optional.empty() : rbd.fullReason(i, p.fullReason()),
                    ranges,
                    changedBlocks.containsKey(i)));
        }
        exports = List.copyOf(out);
        log.info(
                "VM {}: captured {} disk(s) at {}, {} ({})",
                vm,
                disks.size(),
                capturedAt,
                bounded
                        ? "a guest write waits at most " + options.cbwTimeoutSeconds() + " s for its copy-before-write"
                        : "copy-before-write unbounded",
                exports.stream()
                        .map(e -> e.disk() + ": "
                                + e.fullReason()
                                        .map(r -> "full, " + r)
                                        .orElse(
                                                e.changedRanges().isPresent()
                                                        ? "incremental by RBD diff"
                                                        : "incremental"))
                        .toList());
    }

    /**
     * The atomic snapshot moment: for all disks at once, stop the old checkpoint, start the new one,
     * and start copy-before-write into the scratch image. QEMU 7.2 refuses {@code completion-mode:
     * grouped} for bitmap actions, and a {@code sync=none} job never completes on its own, so the
     * default completion mode is used.
     */
    private void fleece() {
        rotateBitmaps(true, true, true);
        for (int i = 0; i < disks.size(); i++) {
            jobs.add(JOB_PREFIX + token + "-" + i);
        }
    }

    /**
     * Whether this QEMU has the explicit copy-before-write filter with {@code cbw-timeout} and
     * {@code on-cbw-error} (7.1+) and the {@code snapshot-access} driver (7.0+): asked of its QMP
     * schema, not inferred from its version. Says so once per VM in the log when it has not.
     */
    private boolean canBound() {
        boolean timeout = false;
        boolean breakSnapshot = false;
        boolean snapshotAccess = false;
        for (JsonNode t : qmp.execute("query-qmp-schema")) {
            for (JsonNode m : t.path("members")) {
                String name = m.path("name").asText();
                timeout |= name.equals("cbw-timeout");
                snapshotAccess |= name.equals("snapshot-access");
                breakSnapshot |= name.equals("break-snapshot");
            }
            for (JsonNode v : t.path("values")) {
                snapshotAccess |= v.asText().equals("snapshot-access");
                breakSnapshot |= v.asText().equals("break-snapshot");
            }
        }
        boolean can = timeout && breakSnapshot && snapshotAccess;
        if (!can && TOLD_UNBOUNDED.add(vm)) {
            log.warn(
                    "VM {}: its QEMU has no copy-before-write filter with cbw-timeout and on-cbw-error, or no"
                            + " snapshot-access driver (QEMU 7.1 or later has them): captures use the classic fleece"
                            + " job, and a guest write waits for its copy into the scratch image however long it"
                            + " takes",
                    vm);
        }
        return can;
    }

    /**
     * The snapshot moment of a bounded capture: the new checkpoint starts; with the guest paused
     * (if it runs), for every disk a copy-before-write filter is put under its device, then the old
     * checkpoint stops; then the guest runs again. The pause keeps the disks consistent with each
     * other; the order of the bitmaps (not the pause) makes sure that no write is missed by both
     * this point and the next: the pause holds back the vCPUs, not every writer (HMP {@code
     * qemu-io}, a {@code cont} from another client while the filters go in). A marker object in QEMU names the pause, so that if this process
     * dies before {@code cont} the next one to connect lets the guest run.
     */
    private void insertFilters() {
        for (JsonNode dev : qmp.execute("query-block")) {
            JsonNode inserted = dev.get("inserted");
            if (inserted != null && !dev.path("qdev").asText("").isEmpty()) {
                qdevOfNode.put(
                        inserted.path("node-name").asText(), dev.path("qdev").asText());
            }
        }
        // the new checkpoint records from before the snapshot moment, the old one until after it: a write
        // in between (nothing but the pause keeps one out, and the pause does not stop every writer) is
        // then in both, read from the snapshot as it was and again next time, never in neither
        rotateBitmaps(false, true, false);
        boolean running = qmp.execute("query-status").path("running").asBoolean(false);
        if (running) {
            pauseMarker = SCRATCH_PREFIX + token + "-paused";
            qmp.execute(
                    "object-add",
                    QmpClient.args().put("qom-type", "throttle-group").put("id", pauseMarker));
            qmp.execute("stop");
            pausedByUs = true;
        }
        // a disk read by its changed blocks alone gets a copy of the old checkpoint, taken once that checkpoint
        // is final: it stops first, while the guest is paused (a write from then on is in the new checkpoint
        // only, so in the next point); otherwise it stops after the filters are in, as above
        boolean changedBlocksOnly = disks.stream().anyMatch(this::readByChangedBlocks);
        try {
            if (changedBlocksOnly) {
                takeChangedBlocks();
            }
            for (int i = 0; i < disks.size(); i++) {
                CapturePlan.Disk d = disks.get(i);
                String node = d.device().node();
                String filter = SCRATCH_PREFIX + token + "-c" + i;
                ObjectNode add = QmpClient.args()
                        .put("driver", "copy-before-write")
                        .put("node-name", filter)
                        .put("file", node)
                        .put("target", targetNodes.get(i))
                        .put("on-cbw-error", "break-snapshot")
                        .put("cbw-timeout", options.cbwTimeoutSeconds());
                if (changedBlocks.containsKey(i)) {
                    // the reader reads only the blocks that hold a change since the old checkpoint: a guest
                    // write elsewhere needs no copy, as in QEMU's own incremental backup. The filter takes
                    // the bitmap's state when added; QEMU refuses reads of the snapshot outside it
                    add.putObject("bitmap").put("node", node).put("name", changedBlocks.get(i));
                }
                qmp.execute("blockdev-add", add);
                filterNodes.add(filter);
            }
            for (int i = 0; i < disks.size(); i++) {
                String node = disks.get(i).device().node();
                String qdev = qdevOfNode.get(node);
                // qom-set onto the node the device already has kills QEMU 7.2 (recipe §4b): ask first
                String now = qmp.execute(
                                "qom-get", QmpClient.args().put("path", qdev).put("property", "drive"))
                        .asText();
                if (!now.equals(node)) {
                    throw new RetriableException("disk " + disks.get(i).device().disk() + " of VM '" + vm + "' moved"
                            + " from node " + node + " to " + now + " while it was being captured; retry");
                }
                try {
                    qmp.execute(
                            "qom-set",
                            QmpClient.args()
                                    .put("path", qdev)
                                    .put("property", "drive")
                                    .put("value", filterNodes.get(i)));
                } catch (QmpException e) {
                    if (!e.description().contains("Permission conflict")) {
                        throw e;
                    }
                    throw new PermanentException(
                            "disk " + disks.get(i).device().disk() + " of VM '" + vm + "': node " + node + " has"
                                    + " another writer besides the guest device " + qdev + " (QEMU: " + e.description()
                                    + "); a bounded copy-before-write protects only writes through the device, so"
                                    + " set worker.captureCbwTimeout: off to capture this VM with the classic fleece"
                                    + " job",
                            e);
                }
                switchedDisks.add(i);
            }
            if (!changedBlocksOnly) {
                rotateBitmaps(true, false, false);
            }
        } finally {
            if (pausedByUs) {
                resume();
            }
        }
    }

    /** Lets the guest paused by {@link #insertFilters()} run again and drops the pause marker. */
    private void resume() {
        qmp.execute("cont");
        pausedByUs = false;
        qmp.execute("object-del", QmpClient.args().put("id", pauseMarker));
        pauseMarker = null;
    }

    /**
     * In one transaction for all disks: stop the old checkpoint ({@code disableOld}), start the new
     * one ({@code addNew}), and (classic fleecing) start the copy-before-write jobs. The classic
     * capture does all three at its snapshot moment; the bounded one starts the new checkpoint
     * before its filters go in and stops the old one after, so that each write is in at least one
     * of them whatever the pause holds back.
     */
    private void rotateBitmaps(boolean disableOld, boolean addNew, boolean withJobs) {
        while (true) {
            List<ObjectNode> actions = new ArrayList<>();
            for (int i = 0; i < disks.size(); i++) {
                CapturePlan.Disk p = disks.get(i);
                String node = p.device().node();
                if (disableOld && p.incremental()) {
                    actions.add(CapturePlan.action(
                            "block-dirty-bitmap-disable", CapturePlan.bitmapAction(node, since.orElseThrow())));
                }
                if (addNew) {
                    actions.add(CapturePlan.action(
                            "block-dirty-bitmap-add",
                            CapturePlan.bitmapAction(node, newCheckpoint)
                                    .put("persistent", p.persistent())
                                    .put("granularity", CapturePlan.GRANULARITY)));
                }
                if (withJobs) {
                    actions.add(CapturePlan.action(
                            "blockdev-backup",
                            QmpClient.args()
                                    .put("device", node)
                                    .put("target", targetNodes.get(i))
                                    .put("sync", "none")
                                    .put("job-id", JOB_PREFIX + token + "-" + i)));
                }
            }
            try {
                if (!actions.isEmpty()) {
                    transaction(actions);
                }
                transactionDone |= addNew; // from now on, close() settles the new checkpoint
                return;
            } catch (QmpException e) {
                Matcher m = NOT_PERSISTABLE.matcher(e.description());
                int i = m.find() ? indexOfPersistentDisk(m.group(1)) : -1;
                if (i < 0) {
                    throw e;
                }
                // Transactions are atomic: nothing happened. Retry with a non-persistent bitmap there.
                CapturePlan.Disk p = disks.get(i);
                log.warn(
                        "VM {}: node {} of disk {} ({}) cannot store persistent bitmaps; its checkpoint {} is not"
                                + " persistent and the next capture of this disk will be full",
                        vm,
                        p.device().node(),
                        p.device().disk(),
                        p.device().imageDescription(),
                        newCheckpoint);
                List<CapturePlan.Disk> copy = new ArrayList<>(disks);
                copy.set(i, p.withoutPersistence());
                disks = List.copyOf(copy);
            }
        }
    }

    private int indexOfPersistentDisk(String node) {
        for (int i = 0; i < disks.size(); i++) {
            if (disks.get(i).device().node().equals(node) && disks.get(i).persistent()) {
                return i;
            }
        }
        return -1;
    }

    private void transaction(List<ObjectNode> actions) {
        ObjectNode args = QmpClient.args();
        ArrayNode list = args.putArray("actions");
        actions.forEach(list::add);
        qmp.execute("transaction", args);
    }

    private void startServer(Path workDir) {
        nbdSocket = workDir.resolve("nbd-" + token + ".sock").toAbsolutePath();
        if (nbdSocket.toString().getBytes(StandardCharsets.UTF_8).length > MAX_SOCKET_PATH) {
            try {
                privateSocketDir = Files.createTempDirectory(HostScratch.SOCKET_DIR_PREFIX + token + "-");
            } catch (IOException e) {
                throw new PermanentException("the work directory " + workDir + " is too deep for a Unix socket and"
                        + " no temporary directory could be created: " + e);
            }
            nbdSocket = privateSocketDir.resolve("nbd.sock");
        }
        ObjectNode args = QmpClient.args();
        args.putObject("addr").put("type", "unix").putObject("data").put("path", nbdSocket.toString());
        try {
            qmp.execute("nbd-server-start", args);
        } catch (QmpException e) {
            if (!e.description().contains("already running")) {
                throw e;
            }
            JsonNode running = qmp.execute("query-block-exports");
            boolean allOurs = true;
            for (JsonNode x : running) {
                allOurs &= x.path("id").asText().startsWith(EXPORT_PREFIX);
            }
            if (!running.isEmpty() && allOurs) {
                throw new RetriableException("VM '" + vm + "' is being exported by another live capture of this"
                        + " engine (another repository's worker protects it too; QEMU runs one NBD server per VM);"
                        + " retry when it has finished");
            }
            if (!running.isEmpty()) {
                throw new PermanentException(
                        "VM '" + vm + "' already runs an NBD server with exports that are not ours (" + e.description()
                                + "); stop it (nbd-server-stop) or capture this VM another way",
                        e);
            }
            // an idle server left by an interrupted capture of ours
            qmp.execute("nbd-server-stop");
            qmp.execute("nbd-server-start", args);
        }
        serverStarted = true;
    }

    private static void createImage(Path file, long size) {
        ExternalCommand.of("qemu-img", "create", "-q", "-f", "qcow2", file.toString(), Long.toString(size))
                .timeout(Duration.ofSeconds(60))
                .mergeStderr()
                .hint("check that the work directory is writable and has free space")
                .ifMissing("install qemu-utils on the worker host")
                .run();
    }

    /**
     * Removes exports, jobs and scratch nodes that an interrupted capture of this engine left in this
     * QEMU (recognised by their id prefixes, and by a {@link HostScratch} tag whose capture is over:
     * its process is gone, or it is ours and no capture holds it), so that the NBD server and the
     * bitmaps are free again. What a live capture of another process (another repository's worker)
     * holds is kept.
     */
    static void removeLeftovers(QmpClient qmp, String vm, Duration timeout) {
        resumeLeftoverPause(qmp, vm); // first: the guest must not wait for the rest
        boolean found = false;
        boolean othersLeft = false;
        for (JsonNode e : qmp.execute("query-block-exports")) {
            String id = e.path("id").asText();
            if (id.startsWith(EXPORT_PREFIX) && HostScratch.isLeftover(id)) {
                log.warn("VM {}: removing export {} left by an interrupted capture", vm, id);
                leftoverStep(vm, () -> deleteExport(qmp, id, timeout));
                found = true;
            } else {
                othersLeft = true;
            }
        }
        if (found && !othersLeft) {
            try {
                qmp.execute("nbd-server-stop");
            } catch (QmpException e) {
                log.debug("VM {}: nbd-server-stop after removing leftovers: {}", vm, e.description());
            }
        }
        for (JsonNode j : qmp.execute("query-block-jobs")) {
            String id = j.path("device").asText();
            if (id.startsWith(JOB_PREFIX) && HostScratch.isLeftover(id)) {
                log.warn("VM {}: cancelling block job {} left by an interrupted capture", vm, id);
                leftoverStep(vm, () -> cancelJob(qmp, id, timeout));
            }
        }
        // users before what they use: snapshot views, then (the device moved off them) filters,
        // throttles, then the scratch images; a filter keeps its node from other writers while a
        // snapshot view uses it, so the device can move back only after the views are gone
        deleteLeftoverNodes(qmp, vm, true);
        switchBackLeftoverFilters(qmp, vm);
        deleteLeftoverNodes(qmp, vm, false);
        for (JsonNode n :
                qmp.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            for (JsonNode b : n.path("dirty-bitmaps")) { // the changed-blocks bitmaps of changes-only captures
                String name = b.path("name").asText();
                if (name.startsWith(SCRATCH_PREFIX) && HostScratch.isLeftover(name)) {
                    String node = n.path("node-name").asText();
                    leftoverStep(
                            vm, () -> qmp.execute("block-dirty-bitmap-remove", CapturePlan.bitmapAction(node, name)));
                }
            }
        }
        for (JsonNode o : qmp.execute("qom-list", QmpClient.args().put("path", "/objects"))) {
            String id = o.path("name").asText();
            if (id.startsWith(SCRATCH_PREFIX) && HostScratch.isLeftover(id)) {
                leftoverStep(
                        vm, () -> qmp.execute("object-del", QmpClient.args().put("id", id)));
            }
        }
    }

    private static void deleteLeftoverNodes(QmpClient qmp, String vm, boolean viewsOnly) {
        List<JsonNode> leftovers = new ArrayList<>();
        for (JsonNode n :
                qmp.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            String name = n.path("node-name").asText();
            boolean view = n.path("drv").asText().equals("snapshot-access");
            if (name.startsWith(SCRATCH_PREFIX) && HostScratch.isLeftover(name) && (view || !viewsOnly)) {
                leftovers.add(n);
            }
        }
        leftovers.sort(
                java.util.Comparator.comparingInt(n -> switch (n.path("drv").asText()) {
                    case "snapshot-access" -> 0;
                    case "copy-before-write" -> 1;
                    case "throttle" -> 2;
                    default -> 3;
                }));
        for (JsonNode n : leftovers) {
            String name = n.path("node-name").asText();
            log.warn("VM {}: deleting scratch node {} left by an interrupted capture", vm, name);
            leftoverStep(vm, () -> qmp.execute("blockdev-del", QmpClient.args().put("node-name", name)));
        }
    }

    /**
     * A capturing process that died while the guest was paused for the filters left its pause
     * marker: let the guest run (if it is still paused; what paused it since is not told apart).
     */
    private static void resumeLeftoverPause(QmpClient qmp, String vm) {
        for (JsonNode o : qmp.execute("qom-list", QmpClient.args().put("path", "/objects"))) {
            String id = o.path("name").asText();
            if (id.startsWith(SCRATCH_PREFIX) && id.endsWith("-paused") && HostScratch.isLeftover(id)) {
                if (qmp.execute("query-status").path("status").asText().equals("paused")) {
                    log.warn("VM {}: a capture that died paused the guest ({}); letting it run", vm, id);
                    leftoverStep(vm, () -> qmp.execute("cont"));
                }
                leftoverStep(
                        vm, () -> qmp.execute("object-del", QmpClient.args().put("id", id)));
            }
        }
    }

    /**
     * Moves every guest device that an interrupted bounded capture left on its copy-before-write
     * filter back onto the filter's {@code file} child (found in QEMU's block graph).
     */
    private static void switchBackLeftoverFilters(QmpClient qmp, String vm) {
        java.util.Map<String, String> qdevOfFilter = new java.util.HashMap<>();
        for (JsonNode dev : qmp.execute("query-block")) {
            String node = dev.path("inserted").path("node-name").asText("");
            String qdev = dev.path("qdev").asText("");
            if (node.startsWith(SCRATCH_PREFIX) && !qdev.isEmpty() && HostScratch.isLeftover(node)) {
                qdevOfFilter.put(node, qdev);
            }
        }
        if (qdevOfFilter.isEmpty()) {
            return;
        }
        JsonNode graph = qmp.execute("x-debug-query-block-graph");
        java.util.Map<Long, String> names = new java.util.HashMap<>();
        for (JsonNode n : graph.path("nodes")) {
            names.put(n.path("id").asLong(), n.path("name").asText());
        }
        for (JsonNode e : graph.path("edges")) {
            String parent = names.get(e.path("parent").asLong());
            String qdev = qdevOfFilter.get(parent);
            if (qdev != null && e.path("name").asText().equals("file")) {
                String child = names.get(e.path("child").asLong());
                log.warn(
                        "VM {}: moving device {} from filter {} left by an interrupted capture back onto {}",
                        vm,
                        qdev,
                        parent,
                        child);
                leftoverStep(vm, () -> switchBack(qmp, qdev, parent, child));
            }
        }
    }

    /**
     * A refused step (the thing went away meanwhile: a command the dead capture had sent ran when
     * QEMU was continued) is logged; a QEMU that does not answer fails the whole removal.
     */
    private static void leftoverStep(String vm, Runnable step) {
        try {
            step.run();
        } catch (QmpException e) {
            log.warn("VM {}: {}; going on", vm, e.getMessage());
        }
    }

    private static void deleteExport(QmpClient qmp, String id, Duration timeout) {
        qmp.execute("block-export-del", QmpClient.args().put("id", id).put("mode", "hard"));
        qmp.awaitEvent(
                "BLOCK_EXPORT_DELETED", e -> id.equals(e.path("data").path("id").asText()), timeout);
    }

    private static void cancelJob(QmpClient qmp, String id, Duration timeout) {
        try {
            qmp.execute("block-job-cancel", QmpClient.args().put("device", id).put("force", true));
        } catch (QmpException e) {
            if (e.errorClass().equals("DeviceNotActive")) {
                return; // the job already ended
            }
            throw e;
        }
        qmp.awaitAnyEvent(
                JOB_END_EVENTS, e -> id.equals(e.path("data").path("device").asText()), timeout);
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
    public CaptureConsistency consistency() {
        return consistency;
    }

    @Override
    public List<DiskExport> disks() {
        return exports;
    }

    /** The capture's own monitor connection, open until the capture is closed. */
    QmpClient qmp() {
        return qmp;
    }

    String vm() {
        return vm;
    }

    /** The disks as they were when the capture started (while it runs, filters hide their nodes). */
    List<BlockDevice> devices() {
        return disks.stream().map(CapturePlan.Disk::device).toList();
    }

    /**
     * Records that the restore point is committed. The old checkpoint is removed by {@link #close()}
     * once the exports, which use it, are gone.
     */
    @Override
    public synchronized void commit() {
        if (closed) {
            // closed from another thread (the job's deadline cancelled it) after the restore point was written
            log.warn(
                    "VM {}: the capture was closed before its restore point's commit reached it; checkpoint {} was"
                            + " dropped, so the next capture of this VM reads its disks in full",
                    vm,
                    newCheckpoint);
            return;
        }
        committed = true;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        teardown();
    }

    /**
     * Tears down on the capture's own connection, each QEMU wait bounded by the timeout; once QEMU
     * failed to answer, the connection is closed and the remaining steps fail at once, so a stopped
     * QEMU costs one timeout. A thread interrupted to cancel its job still tears down: the interrupt
     * is set aside meanwhile and restored after. What cannot be removed now is a leftover the next
     * connection to this VM removes.
     */
    private synchronized void teardown() {
        closed = true;
        boolean interrupted = Thread.interrupted();
        try {
            teardownSteps();
        } finally {
            qmp.close();
            HostScratch.release(token);
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * The worker is gone without closing (the adapter was closed under an open capture): drop the
     * connection and leave everything in QEMU to the next capture, as a crash would.
     */
    synchronized void abandon() {
        if (closed) {
            return;
        }
        closed = true;
        qmp.close();
        HostScratch.release(token);
        onClosed.run();
    }

    private void teardownSteps() {
        List<TidemarkException> errors = new ArrayList<>();
        if (pausedByUs) { // cont failed after the filters went in: never leave the guest paused
            step(errors, this::resume);
        } else if (pauseMarker != null) {
            step(errors, () -> qmp.execute("object-del", QmpClient.args().put("id", pauseMarker)));
        }
        for (String id : exportIds) {
            step(errors, () -> deleteExport(qmp, id, eventTimeout));
        }
        if (serverStarted) {
            step(errors, () -> qmp.execute("nbd-server-stop"));
        }
        for (String id : jobs) {
            step(errors, () -> cancelJob(qmp, id, eventTimeout));
        }
        for (String node : snapshotNodes) {
            step(errors, () -> qmp.execute("blockdev-del", QmpClient.args().put("node-name", node)));
        }
        for (int i : switchedDisks) {
            String node = disks.get(i).device().node();
            String filter = filterNodes.get(i);
            step(errors, () -> switchBack(qmp, qdevOfNode.get(node), filter, node));
        }
        for (String node : filterNodes) {
            step(errors, () -> qmp.execute("blockdev-del", QmpClient.args().put("node-name", node)));
        }
        for (String node : throttleNodes) {
            step(errors, () -> qmp.execute("blockdev-del", QmpClient.args().put("node-name", node)));
        }
        for (String node : scratchNodes) {
            step(errors, () -> qmp.execute("blockdev-del", QmpClient.args().put("node-name", node)));
        }
        if (throttleGroup != null) {
            step(errors, () -> qmp.execute("object-del", QmpClient.args().put("id", throttleGroup)));
        }
        for (Map.Entry<Integer, String> b : changedBlocks.entrySet()) {
            String node = disks.get(b.getKey()).device().node();
            step(errors, () -> qmp.execute("block-dirty-bitmap-remove", CapturePlan.bitmapAction(node, b.getValue())));
        }
        if (transactionDone) {
            step(errors, this::settleBitmaps);
        }
        if (rbd != null) {
            step(errors, () -> rbd.settle(committed));
        }
        for (Path f : scratchFiles) {
            step(errors, () -> delete(f));
        }
        if (nbdSocket != null) {
            step(errors, () -> delete(nbdSocket));
        }
        if (privateSocketDir != null) {
            step(errors, () -> delete(privateSocketDir));
        }
        onClosed.run();
        if (!errors.isEmpty()) {
            TidemarkException first = errors.get(0);
            String msg = "closing the capture of VM '" + vm + "' (QMP socket " + qmp.socket() + ") failed: "
                    + first.getMessage() + "; the next capture of this VM removes what is left";
            TidemarkException e =
                    first.retriable() ? new RetriableException(msg, first) : new PermanentException(msg, first);
            errors.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
    }

    /** Moves the guest device {@code qdev} from our filter back onto {@code node}, if it is on the filter. */
    private static void switchBack(QmpClient qmp, String qdev, String filter, String node) {
        String now = qmp.execute("qom-get", QmpClient.args().put("path", qdev).put("property", "drive"))
                .asText();
        if (now.equals(filter)) { // never onto the node it already has (that kills QEMU 7.2)
            qmp.execute(
                    "qom-set",
                    QmpClient.args().put("path", qdev).put("property", "drive").put("value", node));
        }
    }

    /**
     * A bounded capture whose snapshot some disk gave up (a guest write waited longer than the
     * timeout for its copy-before-write, or the copy failed, and went ahead): its reads fail, and
     * this says why. Asked by reading one byte of each disk's export; a read refused by the server
     * is a snapshot given up (QEMU fails every read of it from then on; 7.2 reports its EACCES as
     * NBD error 22), while an export that is gone (the capture was closed) tells nothing and is
     * left to the reader's own error.
     */
    @Override
    public void verifyIntact() {
        if (!bounded) {
            return;
        }
        for (DiskExport e : exports) {
            List<String> contexts =
                    e.snapshotOfChangesOnly() ? List.of(e.dirtyBitmapContext().orElseThrow()) : List.of();
            try (NbdClient nbd = NbdClient.connect(e.nbdSocket(), e.exportName(), contexts, eventTimeout)) {
                // a snapshot of the changes only is readable only where it changed (QEMU refuses the rest)
                OptionalLong at = e.snapshotOfChangesOnly() ? firstChanged(nbd, e) : OptionalLong.of(0);
                if (at.isPresent()) {
                    nbd.read(at.getAsLong(), 1);
                }
            } catch (NbdClient.ServerError lost) {
                throw new RetriableException(
                        "copy-before-write to the scratch image of disk " + e.disk() + " of VM '" + vm + "' took"
                                + " longer than " + options.cbwTimeoutSeconds() + " s (or failed: check the free"
                                + " space of the work directory); the guest's write went ahead and this snapshot was"
                                + " abandoned; the job is retried",
                        lost);
            } catch (TidemarkException gone) {
                log.debug("VM {}: cannot check the snapshot of disk {}: {}", vm, e.disk(), gone.getMessage());
            }
        }
    }

    /**
     * In one transaction, with the guest paused: stops the old checkpoint of every incremental disk
     * (so its state is final) and, for each disk read by its changed blocks alone, adds a disabled
     * bitmap of ours at the reader's block size and merges the old checkpoint into it: the blocks the
     * filter must keep. A write from then on is in the new checkpoint only, so in the next point.
     */
    private void takeChangedBlocks() {
        List<ObjectNode> actions = new ArrayList<>();
        Map<Integer, String> blocks = new TreeMap<>();
        for (int i = 0; i < disks.size(); i++) {
            CapturePlan.Disk d = disks.get(i);
            String node = d.device().node();
            if (d.incremental()) {
                actions.add(CapturePlan.action(
                        "block-dirty-bitmap-disable", CapturePlan.bitmapAction(node, since.orElseThrow())));
            }
            if (readByChangedBlocks(d)) {
                String name = SCRATCH_PREFIX + token + "-b" + i;
                actions.add(CapturePlan.action(
                        "block-dirty-bitmap-add",
                        CapturePlan.bitmapAction(node, name)
                                .put("granularity", changesOnly.blockBytes())
                                .put("persistent", false)
                                .put("disabled", true)));
                actions.add(CapturePlan.action(
                        "block-dirty-bitmap-merge", CapturePlan.merge(node, name, List.of(since.orElseThrow()))));
                blocks.put(i, name);
            }
        }
        transaction(actions);
        changedBlocks.putAll(blocks);
    }

    /** Whether the reader reads disk {@code d} by its changed blocks alone: an incremental it asked so for. */
    private boolean readByChangedBlocks(CapturePlan.Disk d) {
        return d.incremental()
                && changesOnly.covers(d.device().disk(), d.device().sizeBytes());
    }

    /** The first changed byte of a changes-only export, from its dirty-bitmap context; empty when nothing changed. */
    private static OptionalLong firstChanged(NbdClient nbd, DiskExport e) {
        String context = e.dirtyBitmapContext().orElseThrow();
        long offset = 0;
        while (offset < e.sizeBytes()) {
            List<Extent> extents = nbd.blockStatus(context, offset, Math.min(e.sizeBytes() - offset, 1L << 30));
            if (extents.isEmpty()) {
                break;
            }
            for (Extent x : extents) {
                if (x.dirty()) {
                    return OptionalLong.of(x.offset());
                }
            }
            offset = extents.get(extents.size() - 1).end();
        }
        return OptionalLong.empty();
    }

    /**
     * After {@link #commit()}: remove the old checkpoint; the new one keeps recording. Otherwise, in
     * one transaction: merge the new checkpoint into the old one, re-enable the old one, remove the
     * new one, so the next capture still sees every change since the old checkpoint (merging into a
     * disabled bitmap and enabling it in the same transaction was verified on QEMU 7.2). For a full
     * disk the new checkpoint is simply removed; the next capture of it is full again.
     */
    private void settleBitmaps() {
        List<ObjectNode> actions = new ArrayList<>();
        for (CapturePlan.Disk p : disks) {
            String node = p.device().node();
            if (committed) {
                if (p.sinceExists()) {
                    actions.add(CapturePlan.action(
                            "block-dirty-bitmap-remove", CapturePlan.bitmapAction(node, since.orElseThrow())));
                }
            } else {
                if (p.incremental()) {
                    String old = since.orElseThrow();
                    actions.add(CapturePlan.action(
                            "block-dirty-bitmap-merge", CapturePlan.merge(node, old, List.of(newCheckpoint))));
                    actions.add(CapturePlan.action("block-dirty-bitmap-enable", CapturePlan.bitmapAction(node, old)));
                }
                actions.add(
                        CapturePlan.action("block-dirty-bitmap-remove", CapturePlan.bitmapAction(node, newCheckpoint)));
            }
        }
        if (!actions.isEmpty()) {
            transaction(actions);
        }
    }

    private static void delete(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new RetriableException("cannot delete " + p + ": " + e, e);
        }
    }

    private static void step(List<TidemarkException> errors, Runnable action) {
        try {
            action.run();
        } catch (TidemarkException e) {
            errors.add(e);
        }
    }

    @Override
    public String toString() {
        return "QmpCapture[" + vm + " at " + capturedAt + ", " + exports.size() + " disk(s)]";
    }
}
