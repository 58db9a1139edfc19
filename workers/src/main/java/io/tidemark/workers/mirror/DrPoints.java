package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restore points of a continuously mirrored VM taken at the DR site (ADR 19): the DR site's {@code
 * qemu-storage-daemon} copies its replica node point-in-time ({@code blockdev-backup}, which
 * installs copy-before-write at the instant the transaction runs, so mirrored writes arriving
 * during the copy do not leak into the point) into a new qcow2 in {@code dir}. The first point, and
 * any point after the daemon lost its bitmap {@code tm-dr-points} (a raw replica keeps it only in
 * memory, so a restarted daemon has none; a killed daemon makes a persistent one inconsistent), is a
 * full copy that starts the bitmap in the same transaction; every later one
 * copies only what the bitmap marked ({@code sync=incremental}) into a file backed by the previous
 * point's file. A point exists if and only if its {@code <id>.json} exists (written last); its
 * {@code why} field says why it is full or incremental. {@link #prune} drops points by merging them
 * into the point backed by them. {@link DrVmPoints} takes the points of all of a VM's disks at one
 * instant through {@code prepare}, one transaction per daemon, then {@code finish}.
 *
 * <p>One taker per DR replica at a time (the caller serialises, as the worker does per VM). Reading
 * ({@link #list()}) needs only the directory.
 */
public final class DrPoints {

    private static final Logger log = LoggerFactory.getLogger(DrPoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String BITMAP = "tm-dr-points";
    private static final Duration COPY_TIMEOUT = Duration.ofMinutes(30);
    /** The suffix of a dropped point's record while its file is merged into its child's. */
    private static final String MERGING = ".merging";

    private final Path drQmpSocket;
    private final String replicaNode;
    private final Path dir;
    private final Clock clock;

    /**
     * @param drQmpSocket the QMP socket of the DR site's storage daemon
     * @param replicaNode the node name of the replica there
     * @param dir where the points' files live (at the DR site)
     */
    public DrPoints(Path drQmpSocket, String replicaNode, Path dir, Clock clock) {
        this.drQmpSocket = drQmpSocket;
        this.replicaNode = replicaNode;
        this.dir = dir;
        this.clock = clock;
    }

    /**
     * Takes a point of the replica now and records the mirror's state at that moment.
     *
     * @throws RetriableException when the DR site's daemon does not answer or the copy fails
     */
    public DrPoint take(String vm, MirrorState mirror) {
        Instant at = clock.instant();
        try (QmpClient q = QmpClient.connect(drQmpSocket)) {
            Pending p = prepare(q, "p-" + at.toEpochMilli(), at);
            try {
                ArrayNode actions = JSON.createArrayNode();
                p.addActions(actions);
                ObjectNode tx = QmpClient.args();
                tx.set("actions", actions);
                q.execute("transaction", tx);
            } catch (RuntimeException e) {
                p.abort(q);
                throw e;
            }
            return p.finish(q, vm, mirror);
        }
    }

    /**
     * A point prepared on the DR daemon (its file created and opened as a node) whose copy has not
     * started: {@link #addActions} puts its copy into a QMP transaction (with other disks' points for
     * one instant across the VM's disks), {@link #finish} waits for it and writes its record, {@link
     * #abort} undoes it.
     */
    final class Pending {
        final String id;
        final Instant at;
        final Optional<DrPoint> parent;
        final String why;
        final String pointNode;
        final Path tmp;
        final boolean persistent;
        private boolean started;

        private Pending(String id, Instant at, Optional<DrPoint> parent, String why, boolean persistent) {
            this.id = id;
            this.at = at;
            this.parent = parent;
            this.why = why;
            this.pointNode = nodePrefix() + Long.toString(at.toEpochMilli(), 36);
            this.tmp = dir.resolve(id + ".qcow2.tmp");
            this.persistent = persistent;
        }

        /** Adds this point's copy (and, for a full one, the start of its bitmap) to a transaction's actions. */
        void addActions(ArrayNode actions) {
            if (parent.isEmpty()) {
                actions.addObject()
                        .put("type", "block-dirty-bitmap-add")
                        .putObject("data")
                        .put("node", replicaNode)
                        .put("name", BITMAP)
                        .put("persistent", persistent);
            }
            ObjectNode backup =
                    actions.addObject().put("type", "blockdev-backup").putObject("data");
            backup.put("device", replicaNode).put("target", pointNode).put("job-id", pointNode);
            if (parent.isPresent()) {
                backup.put("sync", "incremental").put("bitmap", BITMAP);
            } else {
                backup.put("sync", "full");
            }
            started = true;
        }

        /** Waits for the copy, closes the point's node, then writes its record (the point exists from then). */
        DrPoint finish(QmpClient q, String vm, MirrorState mirror) {
            boolean copied = false;
            try {
                JsonNode done = q.awaitEvent(
                        "BLOCK_JOB_COMPLETED",
                        e -> e.path("data").path("device").asText().equals(pointNode),
                        COPY_TIMEOUT);
                if (done.path("data").has("error")) {
                    throw new RetriableException("copying the DR replica of " + vm + " (" + replicaNode
                            + ") into point "
                            + id + " failed: " + done.path("data").path("error").asText()
                            + "; the next point retries");
                }
                copied = true;
            } finally {
                if (!copied) {
                    abort(q);
                }
            }
            try {
                q.execute("blockdev-del", QmpClient.args().put("node-name", pointNode));
                Path file = dir.resolve(id + ".qcow2");
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
                DrPoint point = new DrPoint(id, vm, at, mirror.inSync(), mirror.lag(), parent.map(DrPoint::id), file);
                writeRecord(point, why);
                log.info(
                        "DR point {} of {} disk {} taken ({}; mirror {} lag {})",
                        id,
                        vm,
                        mirror.disk(),
                        why,
                        mirror.phase(),
                        mirror.lag());
                return point;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** Undoes the point: its node closed, its file deleted; a full one's new bitmap removed. Quiet. */
        void abort(QmpClient q) {
            try {
                q.execute("blockdev-del", QmpClient.args().put("node-name", pointNode));
            } catch (RuntimeException e) { // a job still holding it, or a lost connection: the next point cleans up
                log.debug("closing DR point node {} failed: {}", pointNode, e.toString());
            }
            if (started && parent.isEmpty()) {
                try { // a bitmap started by a full copy that failed covers too little for the next incremental
                    removeBitmapIfPresent(q);
                } catch (RuntimeException e) {
                    log.debug("removing bitmap {} of {} failed: {}", BITMAP, replicaNode, e.toString());
                }
            }
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                log.debug("deleting {} failed: {}", tmp, e.toString());
            }
        }
    }

    /**
     * Prepares point {@code id} on the daemon {@code q} is connected to: removes what an interrupted
     * point left (then the next point is full: its copy may have cleared the bitmap), decides full or
     * incremental (and why), creates the point's file and opens it as a node.
     */
    Pending prepare(QmpClient q, String id, Instant at) {
        try {
            Files.createDirectories(dir);
            JsonNode node = node(q);
            long size = node.path("image").path("virtual-size").asLong();
            Optional<DrPoint> newest = list().stream().reduce((a, b) -> b);
            // a copy that ended without its record (a crash) may have cleared the bitmap: only a full copy is safe
            List<String> leftovers = removeLeftovers(q);
            Optional<String> full = Optional.empty();
            boolean hasBitmap = false;
            for (JsonNode b : node.path("dirty-bitmaps")) {
                if (b.path("name").asText().equals(BITMAP)) {
                    hasBitmap = true;
                    if (b.path("inconsistent").asBoolean(false)) {
                        full = Optional.of("full: the DR daemon's bitmap is inconsistent (it was killed)");
                    }
                }
            }
            if (newest.isEmpty()) {
                full = Optional.of("full: the first point of this replica");
            } else if (!leftovers.isEmpty()) {
                full = Optional.of("full: an interrupted point left " + leftovers + " (its copy may have cleared the"
                        + " bitmap)");
            } else if (!hasBitmap) {
                full = Optional.of(
                        "full: the DR daemon has no bitmap " + BITMAP + " (it restarted, or none was" + " started)");
            }
            if (full.isPresent() && hasBitmap) {
                q.execute(
                        "block-dirty-bitmap-remove",
                        QmpClient.args().put("node", replicaNode).put("name", BITMAP));
            }
            Optional<DrPoint> parent = full.isPresent() ? Optional.empty() : newest;
            String why = full.orElseGet(
                    () -> "incremental on " + newest.orElseThrow().id());
            // a raw replica (the safe kind, ADR 19) cannot store a bitmap: it lives until the daemon stops
            boolean persistent = node.path("drv").asText().equals("qcow2");
            Pending p = new Pending(id, at, parent, why, persistent);
            List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
            parent.ifPresent(x -> create.addAll(List.of("-b", x.file().toString(), "-F", "qcow2")));
            create.addAll(List.of(p.tmp.toString(), Long.toString(size)));
            ExternalCommand.of(create)
                    .mergeStderr()
                    .ifMissing("install qemu-utils")
                    .run();
            ObjectNode add = QmpClient.args().put("driver", "qcow2").put("node-name", p.pointNode);
            add.putObject("file").put("driver", "file").put("filename", p.tmp.toString());
            try {
                q.execute("blockdev-add", add);
            } catch (RuntimeException e) {
                Files.deleteIfExists(p.tmp);
                throw e;
            }
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The prefix of this replica's point nodes and copy jobs on the daemon: QEMU allows node names of
     * 31 characters, so the replica's node is named by a hash ({@code tm-pt-<8 hex>-<millis base 36>}).
     */
    private String nodePrefix() {
        return "tm-pt-" + String.format("%08x", replicaNode.hashCode()) + "-";
    }

    /**
     * Removes what an interrupted point of this replica left: its copy job and node on the daemon,
     * its files without a record. A point being merged away ({@code <id>.merging}) is not a leftover.
     *
     * @return what was removed (empty: nothing was left)
     * @throws RetriableException while a left copy job is still being cancelled
     */
    private List<String> removeLeftovers(QmpClient q) throws IOException {
        List<String> removed = new ArrayList<>();
        String prefix = nodePrefix();
        for (JsonNode job : q.execute("query-block-jobs")) {
            String jobId = job.path("device").asText();
            if (jobId.startsWith(prefix)) {
                q.execute(
                        "block-job-cancel",
                        QmpClient.args().put("device", jobId).put("force", true));
                throw new RetriableException("an interrupted DR point's copy " + jobId + " still ran on the DR daemon ("
                        + drQmpSocket + "); it is cancelled, the next attempt takes a full point");
            }
        }
        for (JsonNode n : q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            String name = n.path("node-name").asText();
            if (name.startsWith(prefix)) {
                q.execute("blockdev-del", QmpClient.args().put("node-name", name));
                removed.add("node " + name);
            }
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                boolean orphan = n.endsWith(".qcow2")
                        && !Files.exists(dir.resolve(n.replace(".qcow2", ".json")))
                        && !Files.exists(dir.resolve(n.replace(".qcow2", MERGING)));
                if (orphan || n.endsWith(".qcow2.tmp") || n.endsWith(".json.tmp")) {
                    Files.delete(f);
                    removed.add(n);
                }
            }
        }
        return removed;
    }

    private void removeBitmapIfPresent(QmpClient q) {
        for (JsonNode b : node(q).path("dirty-bitmaps")) {
            if (b.path("name").asText().equals(BITMAP)) {
                q.execute(
                        "block-dirty-bitmap-remove",
                        QmpClient.args().put("node", replicaNode).put("name", BITMAP));
            }
        }
    }

    private JsonNode node(QmpClient q) {
        for (JsonNode n : q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            if (n.path("node-name").asText().equals(replicaNode)) {
                return n;
            }
        }
        throw new PermanentException("the DR site's storage daemon (" + drQmpSocket + ") has no node '" + replicaNode
                + "'; check the DR replica's node name");
    }

    private void writeRecord(DrPoint p, String why) throws IOException {
        ObjectNode o = JSON.createObjectNode()
                .put("version", 1)
                .put("id", p.id())
                .put("vm", p.vm())
                .put("createdAt", p.createdAt().toString())
                .put("mirrorInSync", p.mirrorInSync())
                .put("mirrorLagMillis", p.mirrorLag().toMillis())
                .put("file", p.file().getFileName().toString())
                .put("replicaNode", replicaNode)
                .put("why", why);
        p.parent().ifPresent(parent -> o.put("parent", parent));
        writeJson(p.id(), o);
    }

    /**
     * Drops every point whose id is not in {@code keep}, except the newest (the next incremental's
     * parent), first finishing any drop an earlier process left half done. A dropped point that a
     * later point's file is backed by is merged into it: the later point's clusters are committed
     * into the dropped point's file, which then replaces the later point's file (same bytes for the
     * later point, O(its changes) to write). The dropped point's record is renamed {@code
     * <id>.merging} first, so it is never listed while its file changes, and the drop resumes after
     * a crash at any step.
     *
     * @return the ids dropped, oldest first
     */
    public List<String> prune(java.util.Set<String> keep) {
        resumeDrops();
        List<DrPoint> all = list();
        List<String> dropped = new ArrayList<>();
        for (int i = 0; i < all.size() - 1; i++) {
            DrPoint x = all.get(i);
            if (!keep.contains(x.id())) {
                try {
                    Files.move(
                            dir.resolve(x.id() + ".json"),
                            dir.resolve(x.id() + MERGING),
                            StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                finishDrop(x.id());
                dropped.add(x.id());
            }
        }
        return dropped;
    }

    private void resumeDrops() {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.sorted().toList()) {
                String n = f.getFileName().toString();
                if (n.endsWith(MERGING)) {
                    String id = n.substring(0, n.length() - MERGING.length());
                    log.info("DR point {} in {}: finishing its interrupted drop", id, dir);
                    finishDrop(id);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Merges dropped point {@code id} (record already {@code <id>.merging}) into its child, or deletes it. */
    private void finishDrop(String id) {
        try {
            Path merging = dir.resolve(id + MERGING);
            JsonNode x = JSON.readTree(merging.toFile());
            Path xFile = dir.resolve(x.path("file").asText(id + ".qcow2"));
            Optional<String> xParent = Optional.ofNullable(x.get("parent")).map(JsonNode::asText);
            Optional<DrPoint> child = list().stream()
                    .filter(p -> p.parent().equals(Optional.of(id)))
                    .findFirst();
            if (child.isPresent()) {
                DrPoint c = child.get();
                if (Files.exists(xFile)) {
                    // the child's clusters into the dropped point's file; the child's own file stays intact meanwhile
                    ExternalCommand.of(
                                    "qemu-img",
                                    "commit",
                                    "-q",
                                    "-d",
                                    "-f",
                                    "qcow2",
                                    c.file().toString())
                            .mergeStderr()
                            .ifMissing("install qemu-utils")
                            .timeout(COPY_TIMEOUT)
                            .run();
                    Files.move(xFile, c.file(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                }
                ObjectNode record =
                        (ObjectNode) JSON.readTree(dir.resolve(c.id() + ".json").toFile());
                record.remove("parent");
                xParent.ifPresent(parent -> record.put("parent", parent));
                writeJson(c.id(), record);
            } else {
                Files.deleteIfExists(xFile);
            }
            Files.delete(merging);
            log.info(
                    "DR point {} in {} dropped{}",
                    id,
                    dir,
                    child.map(c -> " (merged into " + c.id() + ")").orElse(""));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void writeJson(String id, ObjectNode o) throws IOException {
        Path tmp = dir.resolve(id + ".json.tmp");
        JSON.writeValue(tmp.toFile(), o);
        Files.move(tmp, dir.resolve(id + ".json"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** The points at the DR site, oldest first (only those whose record was written). */
    public List<DrPoint> list() {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            List<DrPoint> out = new ArrayList<>();
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".json"))
                    .toList()) {
                JsonNode o = JSON.readTree(f.toFile());
                out.add(new DrPoint(
                        o.path("id").asText(),
                        o.path("vm").asText(),
                        Instant.parse(o.path("createdAt").asText()),
                        o.path("mirrorInSync").asBoolean(),
                        Duration.ofMillis(o.path("mirrorLagMillis").asLong()),
                        Optional.ofNullable(o.get("parent")).map(JsonNode::asText),
                        dir.resolve(o.path("file").asText())));
            }
            out.sort(Comparator.comparing(DrPoint::createdAt).thenComparing(DrPoint::id));
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Writes point {@code id} as a standalone qcow2 (its backing chain flattened) to {@code into}: the
     * disk to boot for a failover to that point.
     */
    public Path restore(String id, Path into) {
        DrPoint p = list().stream()
                .filter(x -> x.id().equals(id))
                .findFirst()
                .orElseThrow(() -> new PermanentException(
                        "no DR point '" + id + "' in " + dir + "; list them with" + " tidemark dr points"));
        ExternalCommand.of(
                        "qemu-img",
                        "convert",
                        "-f",
                        "qcow2",
                        "-O",
                        "qcow2",
                        p.file().toString(),
                        into.toString())
                .mergeStderr()
                .ifMissing("install qemu-utils")
                .run();
        return into;
    }
}
