package io.tidemark.recovery;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.workers.mirror.DrPoint;
import io.tidemark.workers.mirror.DrPoints;
import io.tidemark.workers.mirror.MirrorRecord;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Fails over continuously protected VMs (ADR 19, ADR 22): boots each at the DR site on its raw DR
 * replica ("now", the default) or on the DR points of a chosen moment, and reports the achieved
 * RPO from the mirror state record the primary's engine wrote ({@link AchievedRpo}) and the RTO.
 *
 * <p>"Now": for each disk the replica's NBD export and nodes are deleted in the DR daemon (the
 * plan's {@code qmp}), so no mirrored write lands after the cut and the file's lock is free; then
 * {@code <work-dir>/<vm>/<disk>.raw} is a symbolic link to the replica (with {@code disks.format:
 * qcow2}: a qcow2 overlay backed by it, so the replica itself stays as it was), and the VM runs on
 * it. A point: each disk's newest DR point not after the chosen moment (or the given id) is
 * flattened into {@code <work-dir>/<vm>/<disk>.raw} (or {@code .qcow2}), written as {@code
 * .partial} and renamed once complete. A VM that already runs at the DR site is reported and left
 * alone, so a re-run starts only the rest. Runs on a QEMU DR host ({@link DrSite}) only.
 */
public final class ContinuousFailover {

    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(10);

    /** Which data a VM comes back with. */
    public sealed interface Choice {
        /** The replica as it is: every write the mirror delivered. */
        record Now() implements Choice {}

        /** The DR point with this id on every disk. */
        record Point(String id) implements Choice {}

        /** Per disk, the newest DR point not after this moment. */
        record At(Instant at) implements Choice {}
    }

    /**
     * When a VM this failover started ran: its RTO (from the start of the command until it ran),
     * when its QEMU was launched and when it reported running. Its RPO is {@link VmResult#rpo()}.
     */
    public record Timing(Duration rto, Instant launchedAt, Instant runningAt) {}

    /** The outcome for one VM. */
    public record VmResult(
            String vm,
            String group,
            Failover.State state,
            String source,
            Map<String, String> pointByDisk,
            Optional<AchievedRpo> rpo,
            Optional<Timing> timing,
            List<Path> disks,
            Optional<DrHypervisor.Started> started,
            List<String> notes) {
        public VmResult {
            pointByDisk = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(pointByDisk));
            disks = List.copyOf(disks);
            notes = List.copyOf(notes);
        }
    }

    private final Optional<ObjectTarget> records;
    private final DrSite site;
    private final DrHypervisor host;
    private final Clock clock;

    /**
     * @param records where the mirror state records are (the plan's source), if it could be opened
     * @param site the DR site's files
     * @param host where the VMs run; must be {@code site} (QEMU processes)
     */
    public ContinuousFailover(Optional<ObjectTarget> records, DrSite site, DrHypervisor host, Clock clock) {
        this.records = records;
        this.site = site;
        this.host = host;
        this.clock = clock;
    }

    /**
     * Brings up the continuous VMs of one group, one after another, and waits for each to run.
     *
     * @param startedNanos {@link System#nanoTime()} when the operator's command began
     * @param startedAt the wall-clock moment the command began (the RPO's "now")
     */
    public List<VmResult> run(
            RecoveryPlan.Group group,
            Choice choice,
            Optional<Instant> primaryLostAt,
            long startedNanos,
            Instant startedAt) {
        List<VmResult> out = new ArrayList<>();
        for (RecoveryPlan.Vm vm : group.vms()) {
            if (vm.isContinuous()) {
                out.add(bringUp(group.name(), vm, choice, primaryLostAt, startedNanos, startedAt));
            }
        }
        return out;
    }

    private VmResult bringUp(
            String group,
            RecoveryPlan.Vm vm,
            Choice choice,
            Optional<Instant> primaryLostAt,
            long startedNanos,
            Instant startedAt) {
        RecoveryPlan.Continuous c = vm.continuous().orElseThrow();
        List<String> diskNames = List.copyOf(c.disks().keySet());
        List<Path> files = diskNames.stream().map(d -> site.disk(vm.name(), d)).toList();
        String source = choice instanceof Choice.Now ? "dr-replica" : "dr-point";
        if (host.status(vm.name()).isPresent()) {
            return new VmResult(
                    vm.name(),
                    group,
                    Failover.State.ALREADY_RUNNING,
                    source,
                    Map.of(),
                    Optional.empty(),
                    Optional.empty(),
                    files,
                    Optional.empty(),
                    List.of());
        }
        if (!(host instanceof DrSite)) {
            throw new PermanentException("VM " + vm.name() + " is continuously protected: its failover runs on a"
                    + " QEMU DR host only (dr-host.hypervisor: qmp), not on " + host.describe());
        }
        if (site.diskFormat() == RecoveryPlan.DiskFormat.RBD) {
            throw new PermanentException("VM " + vm.name() + " is continuously protected: its replica is a file at the"
                    + " DR site, so dr-host.disks.format must be raw or qcow2, not rbd");
        }
        Optional<MirrorRecord> record = record(vm.name());
        List<String> notes = new ArrayList<>();
        Map<String, String> pointByDisk = new LinkedHashMap<>();
        AchievedRpo rpo;
        if (choice instanceof Choice.Now) {
            rpo = AchievedRpo.ofReplica(record, primaryLostAt, startedAt, where(vm.name()));
            if (record.isPresent() && rpo.dataAsOf().isEmpty()) {
                throw new PermanentException("VM " + vm.name() + ": " + rpo.note());
            }
            for (Map.Entry<String, RecoveryPlan.ReplicaDisk> d : c.disks().entrySet()) {
                d.getValue().drQmp().ifPresent(q -> release(vm.name(), d.getKey(), q, d.getValue(), notes));
                useReplica(vm.name(), d.getKey(), d.getValue().replica());
                pointByDisk.put(d.getKey(), "replica");
            }
        } else {
            List<DrPoint> chosen = new ArrayList<>();
            for (Map.Entry<String, RecoveryPlan.ReplicaDisk> d : c.disks().entrySet()) {
                DrPoint p = choose(vm.name(), d.getKey(), d.getValue(), choice);
                chosen.add(p);
                pointByDisk.put(d.getKey(), p.id());
                flatten(vm.name(), d.getKey(), p);
            }
            rpo = AchievedRpo.ofPoints(chosen, record, primaryLostAt, startedAt);
        }
        ((DrSite) host).start(vm, diskNames);
        Instant launched = clock.instant();
        host.awaitRunning(vm.name(), Failover.RUN_TIMEOUT);
        Instant running = clock.instant();
        Duration rto = Duration.ofNanos(System.nanoTime() - startedNanos);
        String accel = ((DrSite) host).accelerator(vm.name());
        Timing timing = new Timing(rto, launched, running);
        return new VmResult(
                vm.name(),
                group,
                Failover.State.STARTED,
                source,
                pointByDisk,
                Optional.of(rpo),
                Optional.of(timing),
                files,
                Optional.of(new DrHypervisor.Started(accel, List.of())),
                notes);
    }

    private Optional<MirrorRecord> record(String vm) {
        if (records.isEmpty()) {
            return Optional.empty();
        }
        return MirrorRecord.newest(records.get(), vm);
    }

    private String where(String vm) {
        return records.map(t -> t.describe() + "/" + MirrorRecord.prefix(vm)).orElse("(the plan's source not open)");
    }

    /**
     * Deletes, in the DR daemon at {@code qmp}, every NBD export of a node over the replica file and
     * then those nodes, so no mirrored write lands after this and QEMU can open the file. A daemon
     * that does not answer is noted (it no longer serves the replica, or QEMU's start names its lock).
     */
    private void release(String vm, String disk, Path qmp, RecoveryPlan.ReplicaDisk d, List<String> notes) {
        if (!Files.exists(qmp)) {
            notes.add("the DR daemon's monitor " + qmp + " of " + disk + " is gone: took the replica as released");
            return;
        }
        Path replica = real(d.replica());
        QmpClient q;
        try {
            q = QmpClient.connect(qmp, QMP_TIMEOUT);
        } catch (TidemarkException e) { // not running: QEMU's lock on the file still refuses a daemon that holds it
            notes.add("the DR daemon " + qmp + " of " + disk + " did not answer (" + e.getMessage()
                    + "): took the replica as released");
            return;
        }
        try (q) {
            List<String> formatNodes = new ArrayList<>();
            List<String> fileNodes = new ArrayList<>();
            for (JsonNode n :
                    q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
                String file = n.path("file").asText("");
                if (!file.isEmpty() && real(Path.of(file)).equals(replica)) {
                    (n.path("drv").asText().equals("file") ? fileNodes : formatNodes)
                            .add(n.path("node-name").asText());
                }
            }
            List<String> nodes = new ArrayList<>(formatNodes);
            nodes.addAll(fileNodes);
            for (JsonNode e : q.execute("query-block-exports")) {
                if (nodes.contains(e.path("node-name").asText())) {
                    String id = e.path("id").asText();
                    q.execute("block-export-del", QmpClient.args().put("id", id).put("mode", "hard"));
                    awaitExportGone(q, id, vm);
                    notes.add("deleted the DR daemon's export " + id + " of " + disk + " (no mirrored write after it)");
                }
            }
            for (String node : nodes) {
                q.execute("blockdev-del", QmpClient.args().put("node-name", node));
            }
        } catch (TidemarkException e) {
            if (!Files.exists(qmp)) {
                notes.add("the DR daemon of " + disk + " went away while releasing the replica");
                return;
            }
            throw new PermanentException(
                    "cannot release the DR replica " + d.replica() + " of " + vm + "/" + disk
                            + " in the DR daemon (" + qmp + "): " + e.getMessage()
                            + "; stop the DR daemon (it must no longer write the replica), then re-run the failover",
                    e);
        }
    }

    private static void awaitExportGone(QmpClient q, String id, String vm) {
        long deadline = System.nanoTime() + QMP_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            boolean present = false;
            for (JsonNode e : q.execute("query-block-exports")) {
                present |= e.path("id").asText().equals(id);
            }
            if (!present) {
                return;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
        throw new RetriableException("the DR daemon's export " + id + " of " + vm + " is still there after "
                + QMP_TIMEOUT + "; re-run the failover");
    }

    /** Points {@code <work-dir>/<vm>/<disk>} at the replica: a link (raw) or an overlay on it (qcow2). */
    private void useReplica(String vm, String disk, Path replica) {
        if (!Files.isRegularFile(replica)) {
            throw new PermanentException("the DR replica " + replica + " of " + vm + "/" + disk
                    + " does not exist; check continuous.disks." + disk + ".replica in the plan");
        }
        Path file = site.disk(vm, disk);
        try {
            Files.createDirectories(file.getParent());
            Files.deleteIfExists(file);
            if (site.diskFormat() == RecoveryPlan.DiskFormat.QCOW2) {
                ExternalCommand.of(
                                "qemu-img",
                                "create",
                                "-q",
                                "-f",
                                "qcow2",
                                "-b",
                                replica.toAbsolutePath().toString(),
                                "-F",
                                "raw",
                                file.toString())
                        .mergeStderr()
                        .ifMissing("install qemu-utils")
                        .run();
            } else {
                Files.createSymbolicLink(file, replica.toAbsolutePath());
            }
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot put the replica of " + vm + "/" + disk + " at " + file + ": " + e.getMessage()
                            + "; check the plan's work-dir",
                    e);
        }
    }

    /** The disk's DR point for {@code choice}. */
    private DrPoint choose(String vm, String disk, RecoveryPlan.ReplicaDisk d, Choice choice) {
        Path dir = d.points()
                .orElseThrow(() -> new PermanentException("VM " + vm + " disk " + disk + " has no points directory"
                        + " in the plan (continuous.disks." + disk + ".points): fail over to the replica instead"));
        List<DrPoint> points = new DrPoints(null, null, dir, clock).list();
        return pick(points, choice)
                .orElseThrow(() -> new PermanentException("no DR point of " + vm + "/" + disk + " in " + dir + " "
                        + (choice instanceof Choice.Point p
                                ? "with id " + p.id()
                                : "at or before " + ((Choice.At) choice).at())
                        + (points.isEmpty()
                                ? " (there are none)"
                                : "; there are " + points.size() + ", from "
                                        + points.get(0).id() + " ("
                                        + points.get(0).createdAt() + ") to "
                                        + points.get(points.size() - 1).id() + " ("
                                        + points.get(points.size() - 1).createdAt() + ")")));
    }

    /** The point {@code choice} names among {@code points} (oldest first). */
    static Optional<DrPoint> pick(List<DrPoint> points, Choice choice) {
        if (choice instanceof Choice.Point p) {
            return points.stream().filter(x -> x.id().equals(p.id())).findFirst();
        }
        Instant at = ((Choice.At) choice).at();
        return points.stream().filter(x -> !x.createdAt().isAfter(at)).reduce((a, b) -> b);
    }

    /** Flattens {@code p}'s chain into the VM's disk file, written as .partial and renamed once complete. */
    private void flatten(String vm, String disk, DrPoint p) {
        Path file = site.disk(vm, disk);
        Path partial = file.resolveSibling(file.getFileName() + ".partial");
        try {
            Files.createDirectories(file.getParent());
            Files.deleteIfExists(partial);
            Files.deleteIfExists(file); // a link to the replica from an earlier "now" attempt goes too
            ExternalCommand.of(
                            "qemu-img",
                            "convert",
                            "-q",
                            "-f",
                            "qcow2",
                            "-O",
                            site.diskFormat().label(),
                            p.file().toString(),
                            partial.toString())
                    .timeout(Duration.ofHours(2))
                    .mergeStderr()
                    .ifMissing("install qemu-utils")
                    .run();
            Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot write DR point " + p.id() + " of " + vm + "/" + disk + " to " + file + ": "
                            + e.getMessage(),
                    e);
        }
    }

    private static Path real(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }
}
