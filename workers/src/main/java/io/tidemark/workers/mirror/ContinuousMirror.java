package io.tidemark.workers.mirror;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.workers.qmp.QmpClient;
import io.tidemark.workers.qmp.QmpException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps one disk of a running VM continuously mirrored to its DR replica (ADR 19): an {@code nbd}
 * blockdev with {@code reconnect-delay} for the DR export, and an active mirror ({@code
 * blockdev-mirror sync=full copy-mode=write-blocking on-target-error=stop}) from the disk's node
 * into it. While the job is ready, a guest write completes only after the DR site acknowledged it.
 *
 * <p>{@link #poll()} is one reconciliation step, safe to repeat and to run after a restart of
 * either side or of this process: it adopts the job it finds (by its id, {@code tm-cdp-DISK}),
 * recreates it when QEMU lost it (a full resync: QEMU 7.2's mirror takes no bitmap), and resumes a
 * job that a DR-link failure stopped (QEMU then copies only what its own dirty bitmap marked since
 * the failure). It connects to the VM's monitor for each poll and holds nothing in between, so
 * captures and other tools can use the monitor. {@link #state()} answers from memory.
 *
 * <p>{@link #start()} is strict: a QEMU that lacks a needed feature or a DR export that cannot be
 * reached fails it with a {@link PermanentException} naming what is missing. Later failures are
 * recorded in the state and retried by the next poll.
 */
public final class ContinuousMirror implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ContinuousMirror.class);

    /** How long the first guest write after a DR-link failure may wait for the link to return. */
    public static final Duration DEFAULT_RECONNECT_DELAY = Duration.ofSeconds(1);

    /** How often the supervisor looks at the job; the lag is conservative by this much. */
    public static final Duration DEFAULT_POLL = Duration.ofMillis(250);

    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(5);
    private static final Duration RESUME_EVERY = Duration.ofMillis(500);

    private final String vm;
    private final Path qmpSocket;
    private final String disk;
    private final DrNbdTarget target;
    private final Duration reconnectDelay;
    private final Clock clock;
    private final Consumer<MirrorState> listener;
    private final Instant startedAt;
    private volatile MirrorState state;
    private Instant lastResume = Instant.EPOCH; // guarded by this
    private volatile boolean closed;
    private Thread loop;

    /**
     * @param qmpSocket the VM's QMP socket
     * @param disk the guest device id (qdev id) of the disk to protect
     * @param listener told every new state (metrics, RPO watch); must not block
     */
    public ContinuousMirror(
            String vm,
            Path qmpSocket,
            String disk,
            DrNbdTarget target,
            Duration reconnectDelay,
            Clock clock,
            Consumer<MirrorState> listener) {
        if (reconnectDelay.isZero() || reconnectDelay.isNegative()) {
            // QEMU's nbd client never reconnects with reconnect-delay 0: the link would stay dead
            throw new IllegalArgumentException("reconnect-delay must be positive, got " + reconnectDelay);
        }
        this.vm = vm;
        this.qmpSocket = qmpSocket;
        this.disk = disk;
        this.target = target;
        this.reconnectDelay = reconnectDelay;
        this.clock = clock;
        this.listener = listener;
        this.startedAt = clock.instant();
        this.state = new MirrorState(
                vm,
                disk,
                target.toString(),
                MirrorState.Phase.UNKNOWN,
                0,
                Duration.ZERO,
                Optional.empty(),
                Optional.empty());
    }

    /** The block job's id in QEMU: named, so a restarted supervisor adopts it and others can see whose it is. */
    public String jobId() {
        return "tm-cdp-" + disk;
    }

    /** The node name of the DR export's {@code nbd} blockdev in QEMU. */
    public String targetNode() {
        return "tm-dr-" + disk;
    }

    /** The last state seen, from memory. */
    public MirrorState state() {
        return state;
    }

    /**
     * Checks QEMU's features, connects the DR export and starts (or adopts) the mirror.
     *
     * @throws PermanentException when QEMU lacks a needed feature or the DR export cannot be reached,
     *     naming which
     * @throws RetriableException when the VM's monitor does not answer
     */
    public synchronized void start() {
        try (QmpClient q = QmpClient.connect(qmpSocket, QMP_TIMEOUT)) {
            JsonNode schema = q.execute("query-qmp-schema");
            List<String> missing = new java.util.ArrayList<>(MirrorFeatures.missing(schema));
            target.tls()
                    .ifPresent(t -> missing.addAll(
                            MirrorFeatures.missingTls(schema, t.hostname().isPresent())));
            if (!missing.isEmpty()) {
                throw new PermanentException("continuous protection of " + vm + " needs QEMU features that "
                        + qmpSocket + " lacks: " + String.join(", ", missing)
                        + "; upgrade QEMU on this host (7.2 has them) or use a snapshot policy for this VM");
            }
            reconcile(q, true);
        }
    }

    /**
     * Starts {@link #start()} and then {@link #poll()} every {@code interval} on a daemon thread of
     * this mirror's own, so a hung QEMU holds only this VM's loop.
     */
    public synchronized void supervise(Duration interval) {
        start();
        if (loop != null) {
            return;
        }
        loop = new Thread(
                () -> {
                    while (!closed) {
                        try {
                            poll();
                        } catch (RuntimeException e) { // recorded in the state by poll; keep supervising
                            log.debug("mirror poll of {}/{} failed: {}", vm, disk, e.getMessage());
                        }
                        LockSupport.parkNanos(interval.toNanos());
                    }
                },
                "cdp " + vm + "/" + disk);
        loop.setDaemon(true);
        loop.start();
    }

    /**
     * One reconciliation step; see the class comment. Never throws for a DR-link or monitor
     * failure: the state says what is wrong and the lag keeps growing.
     */
    public synchronized MirrorState poll() {
        try (QmpClient q = QmpClient.connect(qmpSocket, QMP_TIMEOUT)) {
            reconcile(q, false);
        } catch (RuntimeException e) {
            observe(MirrorState.Phase.UNKNOWN, state.remainingBytes(), Optional.of(e.getMessage()));
        }
        return state;
    }

    private void reconcile(QmpClient q, boolean strict) {
        Optional<JsonNode> job = job(q);
        if (job.isEmpty()) {
            create(q, strict);
            job = job(q);
        }
        if (job.isEmpty()) {
            observe(MirrorState.Phase.UNKNOWN, 0, Optional.of("the mirror job " + jobId() + " ended at once"));
            return;
        }
        JsonNode j = job.get();
        long remaining = Math.max(0, j.path("len").asLong() - j.path("offset").asLong());
        boolean failed = !j.path("io-status").asText("ok").equals("ok");
        boolean paused = j.path("paused").asBoolean(false);
        if (paused && failed) {
            Instant now = clock.instant();
            if (Duration.between(lastResume, now).compareTo(RESUME_EVERY) >= 0) {
                // QEMU's nbd client reconnects on its own; a resume retries the copy of what is dirty
                lastResume = now;
                q.execute("block-job-resume", QmpClient.args().put("device", jobId()));
            }
            observe(
                    MirrorState.Phase.OUTAGE,
                    remaining,
                    Optional.of("writes to the DR export " + target + " fail; QEMU marks them dirty and resumes"
                            + " when the link returns"));
            return;
        }
        boolean inSync = j.path("ready").asBoolean(false) && !paused && !failed && remaining == 0;
        observe(inSync ? MirrorState.Phase.IN_SYNC : MirrorState.Phase.SYNCING, remaining, Optional.empty());
    }

    /**
     * The id of the {@code tls-creds-x509} object of a TLS directory in QEMU: named as ours, and
     * the same for every disk of the VM that uses that directory, so they share it.
     */
    public static String tlsCredsId(DrTls tls) {
        return "tm-dr-tls-" + Integer.toHexString(tls.dir().toString().hashCode());
    }

    /** Adds the client TLS credentials object to QEMU unless it is there already (adopted). */
    private void ensureTlsCreds(QmpClient q, DrTls tls) {
        List<String> missing = tls.missingFiles();
        if (!missing.isEmpty()) {
            throw new PermanentException("TLS to the DR target " + target + " of " + vm + "/" + disk + " needs "
                    + String.join(
                            ", ",
                            missing.stream()
                                    .map(f -> tls.dir().resolve(f).toString())
                                    .toList())
                    + " (missing or unreadable on this host); put the DR CA's ca-cert.pem and this host's"
                    + " client-cert.pem and client-key.pem in " + tls.dir() + " (continuous-protection.md §1)");
        }
        String id = tlsCredsId(tls);
        if (objectExists(q, id)) {
            return;
        }
        try {
            q.execute(
                    "object-add",
                    QmpClient.args()
                            .put("qom-type", "tls-creds-x509")
                            .put("id", id)
                            .put("dir", tls.dir().toString())
                            .put("endpoint", "client")
                            .put("verify-peer", true));
        } catch (QmpException e) {
            if (objectExists(q, id)) { // another disk of this VM added it meanwhile
                return;
            }
            throw new PermanentException(
                    "QEMU rejected the TLS credentials in " + tls.dir() + " for the DR target " + target + " of " + vm
                            + "/" + disk + " (" + e.description() + "); check that ca-cert.pem, client-cert.pem and"
                            + " client-key.pem are PEM files and that the key belongs to the certificate",
                    e);
        }
        log.info("TLS credentials {} from {} added to {} for its DR link", id, tls.dir(), vm);
    }

    private static boolean objectExists(QmpClient q, String id) {
        for (JsonNode o : q.execute("qom-list", QmpClient.args().put("path", "/objects"))) {
            if (o.path("name").asText().equals(id)) {
                return true;
            }
        }
        return false;
    }

    private void create(QmpClient q, boolean strict) {
        if (!nodeExists(q, targetNode())) {
            ObjectNode add = QmpClient.args()
                    .put("driver", "nbd")
                    .put("node-name", targetNode())
                    .put("export", target.export())
                    .put("reconnect-delay", Math.max(1, reconnectDelay.toSeconds()));
            add.set("server", target.qmpServer());
            if (target.tls().isPresent()) {
                DrTls tls = target.tls().get();
                ensureTlsCreds(q, tls);
                add.put("tls-creds", tlsCredsId(tls));
                tls.hostname().ifPresent(h -> add.put("tls-hostname", h));
            }
            try {
                q.execute("blockdev-add", add);
            } catch (QmpException e) {
                if (target.tls().isPresent()) { // leave no credentials behind that nothing uses
                    removeTlsCredsIfUnused(q, tlsCredsId(target.tls().get()));
                }
                throw new PermanentException(unreachable(e.description()), e);
            }
        }
        String node = diskNode(q);
        long diskSize = virtualSize(q, node);
        long replicaSize = virtualSize(q, targetNode());
        if (diskSize != replicaSize) {
            throw new PermanentException("the DR replica " + target + " holds " + replicaSize + " bytes but " + vm + "/"
                    + disk + " holds " + diskSize + "; the disk and the DR replica must have the same size (create the"
                    + " replica with qemu-img create -f qcow2 FILE " + diskSize + ")");
        }
        ObjectNode mirror = QmpClient.args()
                .put("job-id", jobId())
                .put("device", node)
                .put("target", targetNode())
                .put("sync", "full")
                .put("copy-mode", "write-blocking")
                .put("on-target-error", "stop")
                .put("on-source-error", "stop")
                .put("filter-node-name", "tm-cdp-filter-" + disk);
        try {
            q.execute("blockdev-mirror", mirror);
        } catch (QmpException e) {
            if (strict) {
                throw new PermanentException(
                        "QEMU refused to mirror " + vm + "/" + disk + " to " + target + ": " + e.description()
                                + "; the disk and the DR replica must have the same size",
                        e);
            }
            throw e;
        }
        log.info("continuous mirror of {}/{} to {} started (full sync)", vm, disk, target);
    }

    private String unreachable(String why) {
        String prefix =
                "the DR target " + target + " of " + vm + "/" + disk + " cannot be reached from QEMU (" + why + "); ";
        String w = why.toLowerCase(java.util.Locale.ROOT);
        boolean tlsProblem = w.contains("tls") || w.contains("certificate") || w.contains("issuer");
        if (target.tls().isEmpty() && tlsProblem) {
            return prefix + "the DR site's NBD server requires TLS: add tls: {dir: /etc/pki/tidemark/dr} to the"
                    + " policy's dr (continuous-protection.md §1)";
        }
        if (target.tls().isPresent() && tlsProblem) {
            DrTls tls = target.tls().get();
            return prefix + "the TLS handshake failed: check that " + tls.dir().resolve("ca-cert.pem")
                    + " is the CA that signed the DR daemon's server certificate, that the certificate names "
                    + tls.hostname().orElse(target.host().orElse("the host"))
                    + " (set dr.tls.hostname otherwise), and that the DR daemon trusts this host's client-cert.pem";
        }
        return prefix + "start the DR site's NBD server or fix the policy's dr target";
    }

    private String diskNode(QmpClient q) {
        for (JsonNode dev : q.execute("query-block")) {
            String qdev = dev.path("qdev").asText("");
            JsonNode inserted = dev.get("inserted");
            // virtio-blk's qdev ends in /virtio-backend (as ContinuousProtection lists the disks)
            if (inserted != null
                    && (qdev.equals(disk)
                            || qdev.endsWith("/" + disk)
                            || qdev.endsWith("/" + disk + "/virtio-backend"))) {
                return inserted.path("node-name").asText();
            }
        }
        throw new PermanentException("VM " + vm + " (" + qmpSocket + ") has no disk with device id '" + disk
                + "'; check the policy's disk names against query-block");
    }

    private static long virtualSize(QmpClient q, String node) {
        for (JsonNode n : q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            if (n.path("node-name").asText().equals(node)) {
                return n.path("image").path("virtual-size").asLong(-1);
            }
        }
        return -1;
    }

    private static boolean nodeExists(QmpClient q, String node) {
        for (JsonNode n : q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            if (n.path("node-name").asText().equals(node)) {
                return true;
            }
        }
        return false;
    }

    private Optional<JsonNode> job(QmpClient q) {
        for (JsonNode j : q.execute("query-block-jobs")) {
            if (j.path("device").asText().equals(jobId())) {
                return Optional.of(j);
            }
        }
        return Optional.empty();
    }

    private void observe(MirrorState.Phase phase, long remaining, Optional<String> problem) {
        Instant now = clock.instant();
        MirrorState before = state;
        Optional<Instant> last = phase == MirrorState.Phase.IN_SYNC ? Optional.of(now) : before.lastInSync();
        Duration lag = phase == MirrorState.Phase.IN_SYNC
                ? Duration.ZERO
                : Duration.between(last.orElse(startedAt), now).abs();
        state = new MirrorState(vm, disk, target.toString(), phase, remaining, lag, last, problem);
        if (before.phase() != phase) {
            log.info(
                    "continuous mirror of {}/{}: {} -> {}{}",
                    vm,
                    disk,
                    before.phase(),
                    phase,
                    problem.map(p -> " (" + p + ")").orElse(""));
        }
        listener.accept(state);
    }

    /**
     * Stops the mirror: a ready job is cancelled (the replica keeps every write made until then; the
     * VM stays on its own disk) and the DR export's node removed. The supervising thread ends.
     */
    public synchronized void stop() {
        closed = true;
        try (QmpClient q = QmpClient.connect(qmpSocket, QMP_TIMEOUT)) {
            Optional<JsonNode> job = job(q);
            if (job.isPresent()) {
                // a ready mirror cancelled without force finishes copying what is dirty first; a job that
                // a DR outage stopped cannot, so it is abandoned (the replica lacks the outage's writes)
                boolean stuck = job.get().path("paused").asBoolean(false);
                q.execute(
                        "block-job-cancel",
                        QmpClient.args().put("device", jobId()).put("force", stuck));
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (job(q).isPresent() && System.nanoTime() < deadline) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
                }
            }
            if (nodeExists(q, targetNode())) {
                q.execute("blockdev-del", QmpClient.args().put("node-name", targetNode()));
            }
            if (target.tls().isPresent()) {
                removeTlsCredsIfUnused(q, tlsCredsId(target.tls().get()));
            }
        }
    }

    /** Deletes the TLS credentials object once no DR node of ours (another disk's) is left to use it. */
    private void removeTlsCredsIfUnused(QmpClient q, String id) {
        for (JsonNode n : q.execute("query-named-block-nodes", QmpClient.args().put("flat", true))) {
            if (n.path("node-name").asText().startsWith("tm-dr-")) {
                return;
            }
        }
        if (objectExists(q, id)) {
            q.execute("object-del", QmpClient.args().put("id", id));
            log.info("TLS credentials {} removed from {}: no DR link uses them", id, vm);
        }
    }

    /** Ends the supervising thread without touching QEMU: the mirror keeps running for the next supervisor. */
    @Override
    public void close() {
        closed = true;
        Thread t;
        synchronized (this) {
            t = loop;
        }
        if (t != null) {
            t.interrupt();
        }
    }

    @Override
    public String toString() {
        return "ContinuousMirror[" + vm + "/" + disk + " -> " + target + "]";
    }
}
