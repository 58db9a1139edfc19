package io.tidemark.replicator;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.FormatConstants;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Retention;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.repository.maintenance.GarbageCollector;
import io.tidemark.repository.maintenance.Verifier;
import io.tidemark.repository.maintenance.WriteLease;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Backups (two VMs, each in its own thread, holding write leases as the backup worker does),
 * replication to S3Proxy (the real {@link Replicator}), prune (the real {@link Pruner}) and garbage
 * collection of both locations all run at once, in a bounded loop; the collector's {@link
 * FakeClock} jumps past the grace period between its runs. Chunk contents come from a small pool,
 * so backups keep reusing chunks that pruned points left behind — exactly the chunks a careless
 * collector would sweep under them. Afterwards every restore point left at either location
 * restores bit-identically (SHA-256 of the image), and each location holds exactly the chunks its
 * points reference: garbage collection reclaimed the rest.
 */
class GcConcurrencyIT {

    private static final Logger log = LoggerFactory.getLogger(GcConcurrencyIT.class);

    private static final RepositoryConfig REPOSITORY =
            new RepositoryConfig(FormatConstants.REPOSITORY_FORMAT_VERSION, 64 * 1024, 8);
    private static final List<String> VMS = List.of("vm1", "vm2");
    private static final int DISK_CHUNKS = 48;
    private static final int BACKUPS_PER_VM = 10;
    private static final int POOL = 96; // distinct chunk contents backups draw from: twice a disk
    private static final Duration GRACE = Duration.ofHours(24);
    /**
     * The clock jumps a grace period per round, so a lease held across a few rounds must not count as
     * a crashed writer's: leases go stale only after far more rounds than the test runs.
     */
    private static final Duration WRITER_TTL = Duration.ofDays(3650);

    /**
     * The clock of every party: it jumps past the grace period between maintenance rounds. (With
     * the writers on the system clock, days after this one, they judged the collector's sweep
     * announcements expired and wrote during sweeps, losing chunks about one run in seven; writers
     * now time an announcement from their own first sighting, see {@code WriteLease#sweeping}.)
     */
    private final FakeClock gcClock = new FakeClock(Instant.parse("2026-11-24T00:00:00Z"));

    private final Map<String, String> expectedSha = new ConcurrentHashMap<>(); // restore point id → image SHA-256

    @Test
    void backupsReplicationPruneAndGcTogetherLoseNothingAndReclaimGarbage(@TempDir Path tmp) throws Exception {
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("tidemark-gc");
            Repository primary = Repository.openOrInit(
                    new FileObjectTarget(Files.createDirectories(tmp.resolve("primary"))), REPOSITORY);
            try (ObjectTarget offsiteTarget = S3Targets.config(s3.endpoint(), s3, "tidemark-gc", "tm")
                            .open();
                    Replicator replicator =
                            new Replicator(primary, Map.of("offsite", offsiteTarget), null, gcClock, 4)) {
                Repository offsite = Repository.openOrInit(offsiteTarget, REPOSITORY);
                run(primary, offsite, replicator, tmp);
            }
        }
    }

    private void run(Repository primary, Repository offsite, Replicator replicator, Path tmp) throws Exception {
        BlockingQueue<Manifest> toReplicate = new LinkedBlockingQueue<>();
        AtomicBoolean backupsDone = new AtomicBoolean();
        AtomicBoolean replicationDone = new AtomicBoolean();
        AtomicLong swept = new AtomicLong();
        AtomicLong sweptChunks = new AtomicLong();
        AtomicLong gcRuns = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> backups = new ArrayList<>();
            for (int v = 0; v < VMS.size(); v++) {
                String vm = VMS.get(v);
                long seed = v;
                backups.add(pool.submit(() -> backups(primary, vm, seed, toReplicate)));
            }
            Future<?> replication = pool.submit(() -> {
                while (!(backupsDone.get() && toReplicate.isEmpty())) {
                    Manifest m = toReplicate.poll(100, TimeUnit.MILLISECONDS);
                    if (m != null) {
                        replicator.replicate(m.vm(), m.id(), "offsite");
                    }
                }
                replicationDone.set(true);
                return null;
            });
            Pruner pruner = new Pruner(primary, Map.of("offsite", offsite), Pruner.Locks.NONE);
            Future<?> maintenance = pool.submit(() -> {
                // bounded: runs while the others work, then three more rounds to age and sweep the last garbage
                int after = 0;
                for (int round = 0; round < 500 && after < 3; round++) {
                    if (replicationDone.get()) {
                        after++;
                    }
                    pruner.apply(pruner.plan(policies(), gcClock.instant()));
                    for (Repository r : List.of(primary, offsite)) {
                        GarbageCollector.Result result = gc(r).run(false, Restorer.Progress.NONE);
                        swept.addAndGet(result.swept().size());
                        sweptChunks.addAndGet(result.swept(ObjectKeys.CHUNKS));
                        log.debug(
                                "gc {}: {} points, {} objects, {} candidates, swept {} ({} chunks), kept again {}{}",
                                r.describe(),
                                result.manifests(),
                                result.objects(),
                                result.candidates(),
                                result.swept().size(),
                                result.swept(ObjectKeys.CHUNKS),
                                result.referencedAgain(),
                                result.deferred().map(d -> ", put off: " + d).orElse(""));
                        gcRuns.incrementAndGet();
                    }
                    gcClock.advance(GRACE.plusHours(1));
                }
                return null;
            });
            for (Future<?> b : backups) {
                b.get(10, TimeUnit.MINUTES);
            }
            backupsDone.set(true);
            replication.get(10, TimeUnit.MINUTES);
            maintenance.get(10, TimeUnit.MINUTES);
        } finally {
            pool.shutdownNow();
        }

        int restored = 0;
        for (Repository location : List.of(primary, offsite)) {
            Repository fresh = Repository.open(location.target()); // no cached manifests
            Set<String> referenced = new HashSet<>();
            for (String vm : VMS) {
                List<Manifest> points = fresh.manifests(vm);
                assertThat(points)
                        .as("points of %s at %s", vm, fresh.describe())
                        .isNotEmpty();
                for (Manifest m : points) {
                    Path out = tmp.resolve("restore-" + restored++);
                    Restorer.Result r = new Restorer(fresh, 4).restoreDisk(m, "sda", out, Restorer.Progress.NONE);
                    assertThat(r.sha256())
                            .as("restore of %s of %s from %s", m.id(), vm, fresh.describe())
                            .isEqualTo(expectedSha.get(m.id()));
                    Files.delete(out);
                    referenced.addAll(chunkKeys(fresh, m));
                }
            }
            assertThat(new HashSet<>(fresh.target().list(ObjectKeys.CHUNKS)))
                    .as("chunks at %s: exactly those of the points kept", fresh.describe())
                    .isEqualTo(referenced);
            assertThat(new Verifier(fresh, 4)
                            .verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE)
                            .problems())
                    .isEmpty();
        }
        assertThat(expectedSha).hasSize(VMS.size() * BACKUPS_PER_VM);
        assertThat(restored).isLessThan(2 * expectedSha.size()); // prune did remove points
        assertThat(sweptChunks.get()).as("chunks swept").isPositive();
        log.info(
                "{} restore points written, {} restored bit-identically after {} gc runs that swept {} objects ({} chunks)",
                expectedSha.size(),
                restored,
                gcRuns.get(),
                swept.get(),
                sweptChunks.get());
    }

    private GarbageCollector gc(Repository r) {
        return new GarbageCollector(
                r,
                gcClock,
                new GarbageCollector.Settings(GRACE, Duration.ofHours(6), Duration.ofMinutes(2), WRITER_TTL));
    }

    private static PolicySet policies() {
        Policy base = Policy.of(
                "pol",
                VmSelector.ofNames(VMS.toArray(String[]::new)),
                Schedule.Interval.every(Duration.ofHours(1)),
                Duration.ofHours(2),
                List.of("offsite"));
        return PolicySet.of(new Policy(
                base.name(),
                base.vms(),
                base.schedule(),
                base.consistency(),
                base.rpo(),
                base.rto(),
                base.fullEvery(),
                base.targets(),
                Map.of("local", new Retention(2, 0, 0, 0, 0, 0), "offsite", new Retention(3, 0, 0, 0, 0, 0)),
                Optional.empty()));
    }

    /** The backups of one VM, one after another, each under a write lease as the backup worker takes it. */
    private Void backups(Repository primary, String vm, long seed, BlockingQueue<Manifest> committed) {
        Random random = new Random(seed);
        int chunkSize = REPOSITORY.chunkSize();
        long size = (long) DISK_CHUNKS * chunkSize;
        byte[] image = new byte[(int) size];
        Optional<Manifest> parent = Optional.empty();
        for (int i = 0; i < BACKUPS_PER_VM; i++) {
            try (WriteLease lease = WriteLease.acquire(primary.target(), gcClock, "backup of " + vm)) {
                DiskIndexBuilder index = primary.newIndex(
                        size,
                        parent.map(p ->
                                primary.root(Digest.fromHex(p.disks().get(0).index()))));
                List<Integer> rewrite = i == 0
                        ? IntStream.range(0, DISK_CHUNKS).boxed().toList()
                        : IntStream.range(0, 8)
                                .mapToObj(x -> random.nextInt(DISK_CHUNKS))
                                .toList();
                for (int c : rewrite) {
                    byte[] data = poolChunk(random.nextInt(POOL), chunkSize);
                    System.arraycopy(data, 0, image, c * chunkSize, chunkSize);
                    index.set(c, primary.putChunk(data, chunkSize).digest());
                }
                Digest root = index.finish();
                Instant at = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(3600L * i);
                Manifest m = new Manifest(
                        1,
                        RestorePointIds.next(at, random),
                        vm,
                        "hv1",
                        vm + "-" + i,
                        at,
                        at,
                        ConsistencyAchieved.CRASH,
                        Trigger.manual(),
                        "pol",
                        parent.map(Manifest::id),
                        List.of(new DiskEntry(
                                "sda",
                                size,
                                chunkSize,
                                root.hex(),
                                "tm-" + i,
                                parent.isEmpty()
                                        ? Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first"))
                                        : Optional.empty(),
                                0,
                                0)));
                expectedSha.put(m.id(), sha256(image));
                primary.commit(m);
                committed.add(m);
                parent = Optional.of(m);
            }
        }
        return null;
    }

    /** Chunk {@code n} of the pool: the same bytes every time, so backups keep reusing old chunks. */
    private static byte[] poolChunk(int n, int size) {
        byte[] b = new byte[size];
        new Random(1000 + n).nextBytes(b);
        return b;
    }

    private static List<String> chunkKeys(Repository r, Manifest m) {
        Map<String, Boolean> keys = new LinkedHashMap<>();
        var root = r.root(Digest.fromHex(m.disks().get(0).index()));
        for (Digest p : root.pages()) {
            var page = r.page(p);
            for (int i = 0; i < page.size(); i++) {
                if (!page.get(i).isZero()) {
                    keys.put(ObjectKeys.chunk(page.get(i)), true);
                }
            }
        }
        return new ArrayList<>(keys.keySet());
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
