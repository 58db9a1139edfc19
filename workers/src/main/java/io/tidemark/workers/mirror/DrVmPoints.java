package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.workers.qmp.QmpClient;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The DR points of one continuously protected VM (ADR 19): every disk's point ({@link DrPoints})
 * taken at one instant under one id {@code p-<epoch millis>}. Disks whose replicas share a DR daemon
 * are copied in one QMP transaction there; when they span daemons, the VM's vCPUs are paused (QMP
 * {@code stop}, which drains its I/O; with write-blocking mirrors every completed write is then at
 * the DR site) for the few milliseconds the transactions take, and resumed in any case. A VM point
 * exists when every disk has its point's record: {@link #list()} shows only those, so a point
 * interrupted between two disks is never offered (its disks' points stay as chain links until
 * retention drops them).
 *
 * <p>One taker per VM at a time (the caller serialises).
 */
public final class DrVmPoints {

    private static final Logger log = LoggerFactory.getLogger(DrVmPoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * One disk's replica at the DR site.
     *
     * @param disk the guest device id
     * @param qmpSocket the DR daemon's QMP socket serving the replica
     * @param node the replica's node name there; empty: the daemon's only block export's node
     * @param dir the directory of this disk's points
     */
    public record Disk(String disk, Path qmpSocket, Optional<String> node, Path dir) {}

    /**
     * One point of the whole VM.
     *
     * @param mirrorInSync whether every disk's mirror was in sync when it was taken
     * @param mirrorLag the largest lag of the disks' mirrors then
     * @param disks each disk's point, by disk
     */
    public record Point(
            String id, Instant createdAt, boolean mirrorInSync, Duration mirrorLag, Map<String, DrPoint> disks) {}

    private final String vm;
    private final Path vmQmpSocket;
    private final List<Disk> disks;
    private final Clock clock;

    /**
     * @param vmQmpSocket the VM's own QMP socket (to pause its vCPUs when its disks span DR daemons)
     */
    public DrVmPoints(String vm, Path vmQmpSocket, List<Disk> disks, Clock clock) {
        if (disks.isEmpty()) {
            throw new IllegalArgumentException("VM " + vm + " has no disk to take DR points of");
        }
        this.vm = vm;
        this.vmQmpSocket = vmQmpSocket;
        this.disks = List.copyOf(disks);
        this.clock = clock;
    }

    /**
     * Takes a point of every disk at one instant.
     *
     * @param mirrors each disk's mirror state now, by disk (recorded with its point)
     * @throws RetriableException when a DR daemon does not answer or a copy fails (the disks' points
     *     already finished stay as chain links, not as a VM point)
     * @throws PermanentException when a DR daemon has no such replica node
     */
    public Point take(Map<String, MirrorState> mirrors) {
        Instant at = clock.instant();
        String id = "p-" + at.toEpochMilli();
        Map<Path, List<Disk>> byDaemon = new LinkedHashMap<>();
        disks.forEach(d ->
                byDaemon.computeIfAbsent(d.qmpSocket(), k -> new ArrayList<>()).add(d));
        Map<Path, QmpClient> daemons = new LinkedHashMap<>();
        List<Prepared> prepared = new ArrayList<>();
        try {
            for (Map.Entry<Path, List<Disk>> e : byDaemon.entrySet()) {
                QmpClient q = connect(e.getKey());
                daemons.put(e.getKey(), q);
                for (Disk d : e.getValue()) {
                    DrPoints points = new DrPoints(e.getKey(), node(q, d), d.dir(), clock);
                    prepared.add(new Prepared(d, q, points.prepare(q, id, at)));
                }
            }
            startCopies(byDaemon, daemons, prepared);
            Map<String, DrPoint> taken = new TreeMap<>();
            for (Prepared p : prepared) {
                MirrorState m = mirrors.get(p.disk().disk());
                if (m == null) {
                    m = new MirrorState(
                            vm,
                            p.disk().disk(),
                            "",
                            MirrorState.Phase.UNKNOWN,
                            0,
                            Duration.ZERO,
                            Optional.empty(),
                            Optional.of("not measured"));
                }
                taken.put(p.disk().disk(), p.pending().finish(p.q(), vm, m));
            }
            prepared.clear();
            Point point = point(id, taken);
            log.info(
                    "DR point {} of {} taken: {} disk(s), mirror {}, lag {}",
                    id,
                    vm,
                    taken.size(),
                    point.mirrorInSync() ? "in sync" : "NOT in sync",
                    point.mirrorLag());
            return point;
        } finally {
            prepared.forEach(p -> p.pending().abort(p.q()));
            daemons.values().forEach(QmpClient::close);
        }
    }

    private record Prepared(Disk disk, QmpClient q, DrPoints.Pending pending) {}

    /** One transaction per daemon; with several daemons, inside a pause of the VM's vCPUs. */
    private void startCopies(Map<Path, List<Disk>> byDaemon, Map<Path, QmpClient> daemons, List<Prepared> prepared) {
        if (byDaemon.size() == 1) {
            transaction(daemons.values().iterator().next(), prepared);
            return;
        }
        try (QmpClient guest = connect(vmQmpSocket)) {
            boolean running = guest.execute("query-status").path("running").asBoolean(false);
            long paused = System.nanoTime();
            if (running) {
                guest.execute("stop");
            }
            try {
                for (QmpClient q : daemons.values()) {
                    transaction(q, prepared.stream().filter(p -> p.q() == q).toList());
                }
            } finally {
                if (running) {
                    guest.execute("cont");
                    log.info(
                            "{}: vCPUs paused {} ms for one instant across {} DR daemons",
                            vm,
                            (System.nanoTime() - paused) / 1_000_000,
                            daemons.size());
                }
            }
        }
    }

    private static void transaction(QmpClient q, List<Prepared> prepared) {
        ArrayNode actions = JSON.createArrayNode();
        prepared.forEach(p -> p.pending().addActions(actions));
        ObjectNode tx = QmpClient.args();
        tx.set("actions", actions);
        q.execute("transaction", tx);
    }

    private static QmpClient connect(Path socket) {
        try {
            return QmpClient.connect(socket);
        } catch (RetriableException e) {
            throw new RetriableException(
                    "the DR daemon's QMP socket " + socket + " does not answer (" + e.getMessage()
                            + "); the point is retried, check the DR site's qemu-storage-daemon",
                    e);
        }
    }

    /** The disk's replica node: configured, or the daemon's only export's node. */
    private String node(QmpClient q, Disk d) {
        if (d.node().isPresent()) {
            return d.node().get();
        }
        Set<String> nodes = new HashSet<>();
        for (JsonNode export : q.execute("query-block-exports")) {
            nodes.add(export.path("node-name").asText());
        }
        if (nodes.size() != 1) {
            throw new PermanentException("the DR daemon " + d.qmpSocket() + " of " + vm + " disk " + d.disk()
                    + " serves " + nodes.size() + " block exports " + nodes
                    + "; name the replica's node in the policy: dr: {node: \"{vm}-{disk}\"}");
        }
        return nodes.iterator().next();
    }

    private static Point point(String id, Map<String, DrPoint> byDisk) {
        DrPoint any = byDisk.values().iterator().next();
        return new Point(
                id,
                any.createdAt(),
                byDisk.values().stream().allMatch(DrPoint::mirrorInSync),
                byDisk.values().stream()
                        .map(DrPoint::mirrorLag)
                        .max(Duration::compareTo)
                        .orElseThrow(),
                Map.copyOf(byDisk));
    }

    /** The VM's points, oldest first: those every disk has (reads the points' directories, not the daemons). */
    public List<Point> list() {
        Map<String, Map<String, DrPoint>> byId = new TreeMap<>();
        for (Disk d : disks) {
            for (DrPoint p : listing(d).list()) {
                byId.computeIfAbsent(p.id(), k -> new TreeMap<>()).put(d.disk(), p);
            }
        }
        return byId.entrySet().stream()
                .filter(e -> e.getValue().size() == disks.size())
                .map(e -> point(e.getKey(), e.getValue()))
                .sorted(java.util.Comparator.comparing(Point::createdAt).thenComparing(Point::id))
                .toList();
    }

    /**
     * Applies a retention rule to the VM's points: every disk drops the points the rule does not keep
     * (and those of points interrupted between disks), never its newest; see {@link DrPoints#prune}.
     *
     * @param keep which of the points' creation times to keep (a policy's {@code Retention::keep})
     * @return the VM point ids dropped
     */
    public List<String> prune(Function<List<Instant>, Set<Instant>> keep) {
        List<Point> points = list();
        Set<Instant> keptTimes =
                keep.apply(points.stream().map(Point::createdAt).toList());
        Set<String> kept = points.stream()
                .filter(p -> keptTimes.contains(p.createdAt()))
                .map(Point::id)
                .collect(Collectors.toSet());
        Set<String> dropped = new java.util.TreeSet<>();
        for (Disk d : disks) {
            dropped.addAll(listing(d).prune(kept));
        }
        List<String> visible =
                points.stream().map(Point::id).filter(dropped::contains).toList();
        if (!visible.isEmpty()) {
            log.info("DR points {} of {} dropped by retention", visible, vm);
        }
        return visible;
    }

    /** A disk's points for listing and pruning (files only; the node name is not needed). */
    private DrPoints listing(Disk d) {
        return new DrPoints(d.qmpSocket(), d.node().orElse(""), d.dir(), clock);
    }
}
