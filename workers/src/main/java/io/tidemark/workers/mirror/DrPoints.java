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
 * point's file. A point exists if and only if its {@code <id>.json} exists (written last).
 *
 * <p>One taker per DR replica at a time (the caller serialises, as the worker does per VM).
 */
public final class DrPoints {

    private static final Logger log = LoggerFactory.getLogger(DrPoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String BITMAP = "tm-dr-points";
    private static final Duration COPY_TIMEOUT = Duration.ofMinutes(30);

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
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Instant at = clock.instant();
        String id = "p-" + at.toEpochMilli();
        Path file = dir.resolve(id + ".qcow2");
        Path tmp = dir.resolve(id + ".qcow2.tmp");
        try (QmpClient q = QmpClient.connect(drQmpSocket)) {
            JsonNode node = node(q);
            long size = node.path("image").path("virtual-size").asLong();
            Optional<DrPoint> newest = list().stream().reduce((a, b) -> b);
            // a copy that ended without its record (a crash) cleared the bitmap: only a full copy is safe
            boolean orphans = removeOrphans();
            boolean bitmapUsable = false;
            for (JsonNode b : node.path("dirty-bitmaps")) {
                if (b.path("name").asText().equals(BITMAP)) {
                    bitmapUsable = !b.path("inconsistent").asBoolean(false) && !orphans;
                    if (!bitmapUsable || newest.isEmpty()) {
                        q.execute(
                                "block-dirty-bitmap-remove",
                                QmpClient.args().put("node", replicaNode).put("name", BITMAP));
                    }
                }
            }
            Optional<DrPoint> parent = bitmapUsable ? newest : Optional.empty();
            // a raw replica (the safe kind, ADR 19) cannot store a bitmap: it lives until the daemon stops
            boolean persistent = node.path("drv").asText().equals("qcow2");
            List<String> create = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
            parent.ifPresent(p -> create.addAll(List.of("-b", p.file().toString(), "-F", "qcow2")));
            create.addAll(List.of(tmp.toString(), Long.toString(size)));
            ExternalCommand.of(create)
                    .mergeStderr()
                    .ifMissing("install qemu-utils")
                    .run();
            String pointNode = "tm-point-" + at.toEpochMilli();
            ObjectNode add = QmpClient.args().put("driver", "qcow2").put("node-name", pointNode);
            add.putObject("file").put("driver", "file").put("filename", tmp.toString());
            q.execute("blockdev-add", add);
            boolean copied = false;
            try {
                ArrayNode actions = JSON.createArrayNode();
                String job = "tm-point-" + at.toEpochMilli();
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
                backup.put("device", replicaNode).put("target", pointNode).put("job-id", job);
                if (parent.isPresent()) {
                    backup.put("sync", "incremental").put("bitmap", BITMAP);
                } else {
                    backup.put("sync", "full");
                }
                ObjectNode tx = QmpClient.args();
                tx.set("actions", actions);
                q.execute("transaction", tx);
                JsonNode done = q.awaitEvent(
                        "BLOCK_JOB_COMPLETED",
                        e -> e.path("data").path("device").asText().equals(job),
                        COPY_TIMEOUT);
                if (done.path("data").has("error")) {
                    throw new RetriableException("copying the DR replica of " + vm + " into point " + id + " failed: "
                            + done.path("data").path("error").asText() + "; the next point retries");
                }
                copied = true;
            } finally {
                q.execute("blockdev-del", QmpClient.args().put("node-name", pointNode));
                if (!copied && parent.isEmpty()) {
                    // a bitmap started by a full copy that failed covers too little for the next incremental
                    removeBitmapIfPresent(q);
                }
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            DrPoint point = new DrPoint(id, vm, at, mirror.inSync(), mirror.lag(), parent.map(DrPoint::id), file);
            writeRecord(point);
            log.info(
                    "DR point {} of {} taken ({}; mirror {} lag {})",
                    id,
                    vm,
                    parent.map(p -> "incremental on " + p.id()).orElse("full"),
                    mirror.phase(),
                    mirror.lag());
            return point;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
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

    /** Deletes point files without a record (and temporaries); true if there was a finished copy among them. */
    private boolean removeOrphans() throws IOException {
        boolean finished = false;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                boolean copy = n.endsWith(".qcow2") && !Files.exists(dir.resolve(n.replace(".qcow2", ".json")));
                if (copy || n.endsWith(".tmp")) {
                    finished |= copy;
                    Files.delete(f);
                }
            }
        }
        return finished;
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

    private void writeRecord(DrPoint p) throws IOException {
        ObjectNode o = JSON.createObjectNode()
                .put("version", 1)
                .put("id", p.id())
                .put("vm", p.vm())
                .put("createdAt", p.createdAt().toString())
                .put("mirrorInSync", p.mirrorInSync())
                .put("mirrorLagMillis", p.mirrorLag().toMillis())
                .put("file", p.file().getFileName().toString());
        p.parent().ifPresent(parent -> o.put("parent", parent));
        Path tmp = dir.resolve(p.id() + ".json.tmp");
        JSON.writeValue(tmp.toFile(), o);
        Files.move(tmp, dir.resolve(p.id() + ".json"), StandardCopyOption.ATOMIC_MOVE);
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
