package io.tidemark.replicator;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.WriteLease;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ships restore points from the primary repository to replication targets: the chunks the target
 * lacks, then the index pages and roots, then the manifest — the commit. When the parent restore
 * point is already committed on the target, only what changed since it is even looked at, so an
 * incremental costs O(changed data). Re-running after a crash resends nothing the target has.
 * Objects are shipped as they are stored: an encrypted repository's ciphertext, never plaintext,
 * and a new target receives the primary's key objects, so it opens with the same passphrase.
 */
public final class Replicator implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Replicator.class);

    private final Repository primary;
    private final Map<String, ObjectTarget> targets;
    private final EventBus bus;
    private final Clock clock;
    private final ExecutorService pool;
    /**
     * Reads made beside the caller's (the manifest HEAD beside the config read): their own threads,
     * not the upload pool's queue, where they would wait behind other replications' uploads and be
     * dropped by {@link #close}'s {@code shutdownNow} while the caller waits for them.
     */
    private final ExecutorService asks = Executors.newCachedThreadPool(DaemonThreads.named("replicate-ask"));

    private final int window;
    /**
     * One lock per target and VM: the event-driven path and the {@link Reconciler} never ship the
     * same VM to the same target at once, so the second of them finds the point there and sends
     * nothing (see the concurrency table in docs/design.md).
     */
    private final Map<String, Shipping> shipping = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * @param targets replication targets by name
     * @param window chunk uploads in flight per restore point
     */
    public Replicator(Repository primary, Map<String, ObjectTarget> targets, EventBus bus, Clock clock, int window) {
        this.primary = primary;
        this.targets = Map.copyOf(targets);
        this.bus = bus;
        this.clock = clock;
        this.window = Math.max(1, window);
        this.pool = Executors.newFixedThreadPool(this.window, DaemonThreads.named("replicate"));
    }

    /**
     * A replicator for direct calls of {@link #replicate} (seeding a target from another, the CLI),
     * with no bus: its handlers must not be used.
     */
    public Replicator(Repository source, Map<String, ObjectTarget> targets, int window) {
        this(source, targets, null, Clock.systemUTC(), window);
    }

    /**
     * What one replication did.
     *
     * @param alreadyThere the target had the restore point: nothing was sent
     * @param pruned the restore point is not (any more) in the primary: prune removed it, which it does
     *     only when no target's retention wants it, so there is nothing to ship and nothing is announced
     */
    public record Result(
            String target,
            String restorePointId,
            long objectsSent,
            long bytesSent,
            boolean alreadyThere,
            boolean pruned) {}

    /** The bus handler: replicates a created restore point to each of its targets, one after another. */
    public void handle(String topic, Event event) {
        if (event.payload() instanceof RestorePointCreated created) {
            for (String name : created.targets()) {
                replicateAndAnnounce(event, created, name);
            }
        }
    }

    /**
     * A bus handler for one target only. Giving each target its own consumer group (and this
     * handler) lets every target progress, lag and retry independently of the others.
     */
    public EventBus.EventHandler handlerFor(String target) {
        return (topic, event) -> {
            if (event.payload() instanceof RestorePointCreated created
                    && created.targets().contains(target)) {
                replicateAndAnnounce(event, created, target);
            }
        };
    }

    /** The names of the targets this replicator ships to. */
    public java.util.Set<String> targetNames() {
        return targets.keySet();
    }

    private void replicateAndAnnounce(Event event, RestorePointCreated created, String name) {
        if (bus == null) {
            throw new IllegalStateException("this replicator was built without an event bus");
        }
        try {
            Result r;
            try {
                r = replicate(created.vm(), created.restorePointId(), name);
            } catch (RetriableException e) {
                // the target's retry deadline has passed: stop holding the queue. The point goes to
                // the dead-letter topic; the periodic reconciliation ships it once the target answers.
                throw new PermanentException(
                        "replication of " + created.restorePointId() + " of " + created.vm()
                                + " to " + name + " gave up: " + e.getMessage()
                                + ". The reconciliation ships it once the target answers again"
                                + " (`tidemark status` counts what is missing); `tidemark replicate`"
                                + " does it now by hand",
                        e);
            }
            if (!r.pruned()) {
                announce(event.jobId(), created.vm(), created.restorePointId(), name, created.capturedAt(), r);
            }
        } catch (PermanentException e) {
            bus.publish(
                    Topics.JOB_STATUS,
                    created.vm(),
                    Event.of(
                            event.jobId(),
                            clock.instant(),
                            JobFailed.of(
                                    created.vm(),
                                    "replicate",
                                    FailureReason.TARGET_FAILED,
                                    name + ": " + e.getMessage()
                                            + "; the reconciliation ships the point when the target answers",
                                    false)));
            throw e;
        }
    }

    /** Publishes that {@code r} committed a restore point on a target. */
    void announce(String jobId, String vm, String restorePointId, String name, java.time.Instant capturedAt, Result r) {
        if (bus == null) {
            return;
        }
        bus.publish(
                Topics.REPLICATION,
                vm,
                Event.of(
                        jobId,
                        clock.instant(),
                        new ReplicaCommitted(vm, restorePointId, name, capturedAt, r.objectsSent(), r.bytesSent())));
    }

    /** Replicates one restore point to the named target; idempotent. */
    public Result replicate(String vm, String restorePointId, String targetName) {
        ObjectTarget target = targets.get(targetName);
        if (target == null) {
            throw new PermanentException("restore point " + restorePointId + " of " + vm
                    + " asks for replication target '" + targetName + "', which the engine config does not define;"
                    + " defined: " + targets.keySet());
        }
        Optional<Manifest> found = primary.manifest(vm, restorePointId);
        if (found.isEmpty()) {
            log.info(
                    "restore point {} of {} is not in the primary repository {} (pruned): nothing to ship to {}",
                    restorePointId,
                    vm,
                    primary.describe(),
                    targetName);
            return new Result(targetName, restorePointId, 0, 0, false, true);
        }
        Manifest m = found.get();
        Shipping shipping = this.shipping.computeIfAbsent(targetName + "\u0000" + vm, k -> new Shipping());
        // ask whether the point is there while the config is read (two reads, no write: invariant 8
        // holds), one round trip instead of two; a replication of this VM to this target that ends
        // meanwhile makes the answer stale, so it is asked again under the lock then
        long ended = shipping.ended.get();
        Future<Boolean> there;
        try {
            there = asks.submit(() -> target.exists(ObjectKeys.manifest(vm, restorePointId)));
        } catch (java.util.concurrent.RejectedExecutionException e) { // closing: ask under the lock below
            there = java.util.concurrent.CompletableFuture.completedFuture(null);
        }
        Repository remote;
        try {
            // an empty target gets the primary's config (and key objects, when encrypted) first
            remote = primary.replicaOn(target);
        } catch (RuntimeException e) {
            there.cancel(true);
            throw e;
        }
        if (!remote.config().equals(primary.config())) {
            there.cancel(true);
            throw new PermanentException("target " + targetName + " (" + target.describe() + ") was created with "
                    + remote.config() + " but the primary repository uses " + primary.config()
                    + "; use an empty location for this target");
        }
        shipping.lock.lock();
        try {
            Boolean asked = Replicator.<Boolean>await(there);
            boolean committed =
                    asked == null || shipping.ended.get() != ended ? remote.hasManifest(vm, restorePointId) : asked;
            if (committed) {
                return new Result(targetName, restorePointId, 0, 0, true, false);
            }
            // skipping what the target has is deduplication: keep its garbage collection from sweeping meanwhile
            try (WriteLease lease =
                    WriteLease.acquire(target, clock, "replication of " + restorePointId + " of " + vm)) {
                return ship(m, vm, restorePointId, targetName, target, remote);
            }
        } finally {
            shipping.ended.incrementAndGet();
            shipping.lock.unlock();
        }
    }

    /**
     * The shipping of one VM to one target in this process: its lock, and how many shippings ended
     * (to tell whether a manifest check made before taking the lock may be stale).
     */
    private static final class Shipping {
        final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
        final AtomicLong ended = new AtomicLong();
    }

    /** The repository of the primary this replicator ships from. */
    Repository primary() {
        return primary;
    }

    /** The target named {@code name}, as configured (with its retry wrapper), if defined. */
    Optional<ObjectTarget> target(String name) {
        return Optional.ofNullable(targets.get(name));
    }

    private Result ship(
            Manifest m, String vm, String restorePointId, String targetName, ObjectTarget target, Repository remote) {
        Optional<Manifest> parentThere = m.parent()
                .filter(p -> remote.hasManifest(vm, p))
                .flatMap(p -> parentHint(() -> primary.manifest(vm, p)).flatMap(x -> x));
        Counter sent = new Counter();
        try {
            for (DiskEntry disk : m.disks()) {
                Optional<IndexRoot> parentRoot = parentThere
                        .flatMap(pm -> pm.disk(disk.name()))
                        .flatMap(pd -> parentHint(() -> primary.root(Digest.fromHex(pd.index()))));
                shipDisk(Digest.fromHex(disk.index()), parentRoot, target, sent);
            }
        } catch (PermanentException e) {
            if (primary.storedManifest(vm, restorePointId).isPresent()) {
                throw e;
            }
            // pruned meanwhile, and garbage collection swept objects only it referenced: nothing lost
            log.info(
                    "restore point {} of {} was pruned from {} while it was shipped to {} ({}); not committed there",
                    restorePointId,
                    vm,
                    primary.describe(),
                    targetName,
                    e.getMessage());
            return new Result(targetName, restorePointId, sent.objects.get(), sent.bytes.get(), false, true);
        }
        // the commit: only now does the restore point exist on the target
        Optional<byte[]> stored = primary.storedManifest(vm, restorePointId);
        if (stored.isEmpty()) { // pruned while its objects were shipped: the target's GC reclaims them
            log.info(
                    "restore point {} of {} was pruned from the primary repository {} while it was shipped to {};"
                            + " not committed there",
                    restorePointId,
                    vm,
                    primary.describe(),
                    targetName);
            return new Result(targetName, restorePointId, sent.objects.get(), sent.bytes.get(), false, true);
        }
        byte[] manifest = stored.get();
        if (target.putIfAbsent(ObjectKeys.manifest(vm, restorePointId), manifest)) {
            sent.add(1, 0);
        }
        log.info(
                "replicated {} of {} to {}: {} objects, {} bytes",
                restorePointId,
                vm,
                targetName,
                sent.objects.get(),
                sent.bytes.get());
        return new Result(targetName, restorePointId, sent.objects.get(), sent.bytes.get(), false, false);
    }

    /**
     * Reads part of the parent's manifest or index on the primary, which only narrows what is looked
     * at. The parent may have been pruned there and its objects collected since (a cached manifest
     * outlives them), or its manifest damaged after it was shipped (verify reports that): then
     * everything is probed instead, which is always correct, and the child still ships.
     */
    private static <T> Optional<T> parentHint(java.util.function.Supplier<T> read) {
        try {
            return Optional.of(read.get());
        } catch (PermanentException e) {
            log.debug("parent unreadable on the primary, probing instead: {}", e.getMessage());
            return Optional.empty();
        }
    }

    private void shipDisk(Digest rootDigest, Optional<IndexRoot> parentRoot, ObjectTarget target, Counter sent) {
        IndexRoot root = primary.root(rootDigest);
        boolean sameGeometry = parentRoot
                .map(p -> p.diskSize() == root.diskSize()
                        && p.chunkSize() == root.chunkSize()
                        && p.entriesPerPage() == root.entriesPerPage())
                .orElse(false);
        Uploads uploads = new Uploads();
        Probing probing = new Probing();
        // pages whose chunks are under way: each is written once all its chunks are there, while the
        // chunks of the next pages keep the window full (no drain at every page boundary)
        java.util.ArrayDeque<PendingPage> pendingPages = new java.util.ArrayDeque<>();
        for (int p = 0; p < root.pages().size(); p++) {
            Digest pageDigest = root.pages().get(p);
            if (sameGeometry && parentRoot.get().pages().get(p).equals(pageDigest)) {
                continue; // unchanged page: it and all its chunks are on the target with the parent
            }
            IndexPage page = primary.page(pageDigest);
            Digest parentPageDigest = sameGeometry ? parentRoot.get().pages().get(p) : null;
            IndexPage parentPage = parentPageDigest == null
                    ? null
                    : parentHint(() -> primary.page(parentPageDigest)).orElse(null);
            List<Future<?>> ofPage = new ArrayList<>();
            java.util.Set<Digest> patchesOfPage = new java.util.HashSet<>(); // a pack (ADR 26) serves many entries
            for (int i = 0; i < page.size(); i++) {
                Digest patch = page.patch(i); // a patch (ADR 15) ships like a chunk, next to its base
                if (!patch.isZero()
                        && (parentPage == null || !parentPage.patch(i).equals(patch))
                        && patchesOfPage.add(patch)) {
                    Probing probePatch = parentPage == null ? probing : Probing.NEVER;
                    ofPage.add(uploads.submit(() -> copy(ObjectKeys.chunk(patch), patch, target, sent, probePatch)));
                }
                Digest d = page.get(i);
                if (d.isZero() || (parentPage != null && parentPage.get(i).equals(d))) {
                    continue;
                }
                // next to a parent on the target, a chunk that differs from the parent's is most likely
                // new there: send it at once (the conditional write keeps it harmless if it is not);
                // without one (a first copy, or a resumed one) ask first while asking pays
                Probing probe = parentPage == null ? probing : Probing.NEVER;
                ofPage.add(uploads.submit(() -> copy(ObjectKeys.chunk(d), d, target, sent, probe)));
            }
            pendingPages.add(new PendingPage(pageDigest, ofPage));
            while (!pendingPages.isEmpty() && pendingPages.peek().chunksDone()) {
                writePage(pendingPages.poll(), uploads, target, sent);
            }
        }
        while (!pendingPages.isEmpty()) {
            writePage(pendingPages.poll(), uploads, target, sent);
        }
        copy(ObjectKeys.root(rootDigest), rootDigest, target, sent, Probing.NEVER);
    }

    /** An index page to write once its chunks (and patches) are on the target. */
    private record PendingPage(Digest digest, List<Future<?>> chunks) {
        boolean chunksDone() {
            return chunks.stream().allMatch(Future::isDone);
        }
    }

    /** Writes a page after all its chunks are there; throws instead if a copy failed. */
    private void writePage(PendingPage page, Uploads uploads, ObjectTarget target, Counter sent) {
        uploads.await(page.chunks());
        copy(ObjectKeys.page(page.digest()), page.digest(), target, sent, Probing.NEVER);
    }

    /**
     * Copies one content-addressed object, verified, unless the target already has it.
     *
     * @param probing whether to ask the target first (saves reading and sending an object it
     *     probably has, at the cost of a round trip)
     */
    private Void copy(String key, Digest digest, ObjectTarget target, Counter sent, Probing probing) {
        boolean probe = probing.now();
        if (probe) {
            boolean there = target.exists(key);
            probing.probed(there);
            if (there) {
                return null;
            }
        }
        byte[] object = primary.target()
                .get(key)
                .orElseThrow(() -> new PermanentException("object " + key + " is missing from the primary repository "
                        + primary.describe() + "; run `tidemark verify`"));
        primary.verify(key, object, digest); // never ship a corrupt object; encrypted ones go as they are
        if (target.putIfAbsent(key, object)) {
            sent.add(1, object.length);
        } else if (!probe) {
            probing.foundUnasked();
        }
        return null;
    }

    /**
     * Whether to ask the target for a chunk before sending it, when no parent on the target says
     * which chunks are new there. Asking first (a HEAD) costs a round trip per chunk; sending at
     * once (the conditional PUT) costs the bytes of a chunk the target has. A resumed copy finds
     * the chunks it sent before, a first copy finds none: so ask while asking finds chunks, stop
     * after {@link #MISSES} answers in a row found none, and ask again as soon as a conditional PUT
     * says the target had the chunk after all. A first copy of n chunks thus asks {@link #MISSES}
     * times instead of n; a resumed one sends at most {@link #MISSES} plus a window of chunks twice
     * per run of chunks the target already had.
     */
    static final class Probing {
        static final int MISSES = 16;
        static final Probing NEVER = new Probing(false);

        private final Boolean fixed;
        private final java.util.concurrent.atomic.AtomicInteger missesInARow =
                new java.util.concurrent.atomic.AtomicInteger();

        Probing() {
            this.fixed = null;
        }

        private Probing(boolean fixed) {
            this.fixed = fixed;
        }

        boolean now() {
            return fixed != null ? fixed : missesInARow.get() < MISSES;
        }

        void probed(boolean found) {
            if (fixed == null) {
                if (found) {
                    missesInARow.set(0);
                } else {
                    missesInARow.incrementAndGet();
                }
            }
        }

        void foundUnasked() {
            if (fixed == null) {
                missesInARow.set(0);
            }
        }
    }

    /**
     * The chunk copies of one disk in flight: at most {@code 2 × window} queued or running, and any
     * copy that ends frees its slot for the next. (Waiting for the oldest one instead, as before,
     * let a single slow PUT idle the other threads once they had worked through the queue behind
     * it: docs/benchmarks.md §2 (a).) After the first failure no further copy starts, and
     * the next {@link #submit} or {@link #await} throws that failure.
     */
    private final class Uploads {
        private final java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(window * 2);
        private final java.util.concurrent.atomic.AtomicReference<RuntimeException> failed =
                new java.util.concurrent.atomic.AtomicReference<>();

        Future<?> submit(Runnable copy) {
            try {
                slots.acquire();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("replication interrupted", e);
            }
            if (failed.get() != null) {
                slots.release();
                throwIfFailed();
            }
            try {
                return pool.submit(() -> {
                    try {
                        if (failed.get() == null) {
                            copy.run();
                        }
                    } catch (RuntimeException e) {
                        failed.compareAndSet(null, e);
                    } finally {
                        slots.release();
                    }
                });
            } catch (RuntimeException e) { // rejected: the replicator is closing
                slots.release();
                throw e;
            }
        }

        /** Waits for {@code copies}; throws the first failure of any copy of this disk, if any. */
        void await(List<Future<?>> copies) {
            for (Future<?> f : copies) {
                Replicator.await(f);
            }
            throwIfFailed();
        }

        private void throwIfFailed() {
            RuntimeException e = failed.get();
            if (e instanceof TidemarkException t) {
                throw t;
            }
            if (e != null) {
                throw new IllegalStateException("bug in replication", e);
            }
        }
    }

    private static <T> T await(Future<T> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("replication interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            throw new IllegalStateException("bug in replication", e.getCause());
        }
    }

    @Override
    public void close() {
        asks.shutdown(); // a read under way ends by itself (the target's timeouts)
        pool.shutdownNow();
    }

    private static final class Counter {
        final AtomicLong objects = new AtomicLong();
        final AtomicLong bytes = new AtomicLong();

        void add(long o, long b) {
            objects.addAndGet(o);
            bytes.addAndGet(b);
        }
    }
}
