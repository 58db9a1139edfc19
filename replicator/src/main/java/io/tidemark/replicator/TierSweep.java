package io.tidemark.replicator;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Tier;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.EpochLock;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Decides, for one location, which storage class each chunk may move to, and tags the chunks
 * accordingly ({@link ColdStorage#TIER_TAG}); the bucket's lifecycle rules ({@code S3TierRules})
 * then move the tagged chunks (docs/adr/0020-storage-tiers.md).
 *
 * <p>Chunks are content-addressed and shared by many points, often of several VMs. A chunk moves
 * only when <b>every</b> point at the location that references it is in a tier of the same storage
 * class: a point of a VM without tiers at the location (or whose policy is unknown) holds its
 * chunks in the class they were written in; a point past its last tier (expired, awaiting prune)
 * does not hold anything back. Manifests, index roots and pages are never tagged, so listing and
 * showing points never needs a restore. A chunk tagged before but now needed by a point in a
 * warmer tier is untagged; if it already moved to an archive class it is <b>rewarmed</b>: the sweep
 * asks the store to restore it and, at a later sweep once the restored copy is readable, copies it
 * onto itself in the class new objects are written in ({@link ColdStorage#rewarm}); until then it is
 * listed in {@link Report#rewarm}.
 *
 * <p>One sweep per location at a time: {@link #run} holds the tier-sweep lock ({@link EpochLock}
 * under {@code state/tier/lock/}, a short lease it renews while it works), so two engines, or an
 * engine and {@code tidemark tier sweep}, never sweep one location at once (docs/design.md §8).
 * The {@link TierLedger} at the location remembers what the last sweep left on each chunk: a repeat
 * sweep reads the tag only of chunks it has not seen or whose decision changed.
 */
public final class TierSweep {

    static final String LOCK = ObjectKeys.STATE + "tier/lock/";

    /**
     * How a sweep runs.
     *
     * @param lockTtl the lease of the sweep lock; renewed by the holder every third of it, so a
     *     dead holder blocks others at most this long
     * @param ledgerMaxGap a ledger older than this is not trusted (keep it below GC's {@code grace}:
     *     a chunk collected and written again meanwhile would be untagged)
     * @param fullReadEvery every tag is read again at least this often (finds tags changed by hand)
     * @param restoreDays how long the store keeps the restored copy of a chunk being rewarmed
     */
    public record Settings(Duration lockTtl, Duration ledgerMaxGap, Duration fullReadEvery, int restoreDays) {
        /** 10 min lease, ledger trusted for 20 h, a full read every 7 days, restored copies kept 2 days. */
        public static final Settings DEFAULT =
                new Settings(Duration.ofMinutes(10), Duration.ofHours(20), Duration.ofDays(7), 2);
    }

    /**
     * What a sweep did.
     *
     * @param chunks distinct chunks referenced at the location
     * @param tagged chunks newly tagged, per storage class
     * @param untagged chunks whose tag was removed because a warmer point needs them
     * @param rewarm chunks a point in a readable tier needs that are still archived after this
     *     sweep (restore requested or in progress; a restore of such a point waits for them)
     * @param tagReads tags read (the rest were known from the ledger)
     * @param rewarmed archived chunks copied back to the written class by this sweep
     * @param restoresRequested restore requests this sweep issued for chunks being rewarmed
     * @param fullRead why every tag was read ("" when the ledger was trusted)
     * @param rewarmFailures chunks whose rewarm step failed this sweep, with why (tried again next sweep)
     */
    public record Report(
            int chunks,
            Map<String, Integer> tagged,
            int untagged,
            List<String> rewarm,
            int tagReads,
            int rewarmed,
            int restoresRequested,
            String fullRead,
            List<String> rewarmFailures) {
        public Report {
            tagged = Map.copyOf(tagged);
            rewarm = List.copyOf(rewarm);
            rewarmFailures = List.copyOf(rewarmFailures);
        }
    }

    private final String location;
    private final Repository repository;
    private final ColdStorage store;
    private final Clock clock;
    private final String owner;
    private final Settings settings;

    /** A sweep on the system clock with {@link Settings#DEFAULT}, owned by this process. */
    public TierSweep(String location, Repository repository, ColdStorage store) {
        this(location, repository, store, Clock.systemUTC(), defaultOwner(), Settings.DEFAULT);
    }

    /**
     * @param clock times the lock's lease (ages and the ledger are timed by {@code now} of {@link #run})
     * @param owner names the holder in the lock, for whoever finds it held
     */
    public TierSweep(
            String location, Repository repository, ColdStorage store, Clock clock, String owner, Settings settings) {
        this.location = Objects.requireNonNull(location, "location");
        this.repository = Objects.requireNonNull(repository, "repository");
        this.store = Objects.requireNonNull(store, "store");
        this.clock = Objects.requireNonNull(clock, "clock");
        this.owner = Objects.requireNonNull(owner, "owner");
        this.settings = Objects.requireNonNull(settings, "settings");
    }

    /** "tier sweep by host pid N", naming this process in the lock. */
    public static String defaultOwner() {
        String host;
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.io.IOException e) {
            host = "unknown host";
        }
        return "tier sweep by " + host + " pid " + ProcessHandle.current().pid();
    }

    /**
     * The storage classes the tiers at {@code location} move chunks to (every tier's class but the
     * first's: the first tier is where chunks are written); empty = nothing to tag there.
     */
    public static Set<String> classesAt(PolicySet policies, String location) {
        Set<String> out = new TreeSet<>();
        for (Policy p : policies.policies()) {
            List<Tier> chain = p.tiers().at(location);
            for (int i = 1; i < chain.size(); i++) {
                chain.get(i).storageClass().ifPresent(out::add);
            }
        }
        return out;
    }

    /** The storage class every referencing point allows, per chunk key; empty = stay where written. */
    public Map<String, Optional<String>> plan(PolicySet policies, Instant now) {
        Map<String, Optional<String>> byKey = new TreeMap<>();
        Map<Digest, IndexRoot> roots = new HashMap<>();
        Map<Digest, IndexPage> pages = new HashMap<>();
        for (String vm : repository.vms()) {
            Optional<Policy> policy = policies.policies().stream()
                    .filter(p -> p.vms().matches(vm, Map.of()))
                    .findFirst();
            for (Manifest point : repository.manifests(vm)) {
                Duration age = Duration.between(point.capturedAt(), now);
                boolean tiered =
                        policy.map(p -> !p.tiers().at(location).isEmpty()).orElse(false);
                Optional<Tier> tier = tiered ? policy.get().tiers().tierFor(location, age) : Optional.empty();
                if (tiered && tier.isEmpty()) {
                    continue; // past its last tier: expired, does not hold its chunks back
                }
                Optional<String> vote = tier.flatMap(Tier::storageClass);
                // the first tier of a location is where chunks are written: it does not move them
                if (tier.isPresent() && policy.get().tiers().at(location).get(0).equals(tier.get())) {
                    vote = Optional.empty();
                }
                for (String key : chunkKeys(repository, point, roots, pages)) {
                    Optional<String> before = byKey.get(key);
                    if (before == null) {
                        byKey.put(key, vote);
                    } else if (!before.equals(vote)) {
                        byKey.put(key, Optional.empty()); // points disagree: stay where written
                    }
                }
            }
        }
        return byKey;
    }

    /**
     * Tags and untags chunks as {@link #plan} decides, under the tier-sweep lock, reading only the
     * tags the ledger does not vouch for; moves on the rewarm of archived chunks a point needs.
     *
     * @param now the instant point ages are measured at
     * @throws io.tidemark.core.RetriableException when another sweep holds the lock, or the location
     *     fails; the next sweep continues (every step is idempotent)
     */
    public Report run(PolicySet policies, Instant now) {
        ObjectTarget target = repository.target();
        try (EpochLock lock = EpochLock.acquire(target, LOCK, "tier sweep", clock, settings.lockTtl(), owner)) {
            Renewal renewal = new Renewal(lock);
            Map<String, Optional<String>> plan = plan(policies, now);
            TierLedger.Read prior = TierLedger.read(target);
            String distrust = prior.distrust(now, settings.ledgerMaxGap(), settings.fullReadEvery())
                    .orElse("");
            Map<String, String> known = distrust.isEmpty() ? prior.tags() : Map.of();
            TierLedger.markIncomplete(target, prior);
            Map<String, String> next = new HashMap<>();
            Set<String> pending = new TreeSet<>();
            for (String key : prior.rewarm()) {
                if (plan.containsKey(key) && plan.get(key).isEmpty()) {
                    pending.add(key); // still needed warm; dropped if unreferenced or cold again
                }
            }
            Map<String, Integer> tagged = new TreeMap<>();
            int untagged = 0;
            int reads = 0;
            for (Map.Entry<String, Optional<String>> e : plan.entrySet()) {
                String key = e.getKey();
                String want = e.getValue().orElse("");
                next.put(key, want);
                if (want.equals(known.get(key))) {
                    continue; // the last sweep left it so, and nothing since could change it
                }
                renewal.maybe();
                reads++;
                Optional<String> have = store.tierTag(key);
                if (have.equals(e.getValue())) {
                    continue;
                }
                store.tagTier(key, e.getValue());
                if (e.getValue().isPresent()) {
                    tagged.merge(e.getValue().get(), 1, Integer::sum);
                } else {
                    untagged++;
                    if (needsRewarm(store.placement(key))) {
                        pending.add(key);
                    }
                }
            }
            int rewarmed = 0;
            int requested = 0;
            List<String> rewarmFailures = new java.util.ArrayList<>();
            for (java.util.Iterator<String> it = pending.iterator(); it.hasNext(); ) {
                String key = it.next();
                renewal.maybe();
                try {
                    switch (rewarm(key)) {
                        case DONE -> {
                            rewarmed++;
                            it.remove();
                        }
                        case DROP -> it.remove();
                        case REQUESTED -> requested++;
                        case WAITING -> {
                            // asked before; copied back by a later sweep once readable
                        }
                    }
                } catch (io.tidemark.core.TidemarkException e) {
                    // one chunk's rewarm must not stop the others nor the ledger: tried again next sweep
                    rewarmFailures.add(key + ": " + e.getMessage());
                }
            }
            renewal.check();
            TierLedger.write(
                    target, prior, now, distrust.isEmpty() ? prior.fullReadAt().orElse(now) : now, next, pending);
            return new Report(
                    plan.size(),
                    tagged,
                    untagged,
                    List.copyOf(pending),
                    reads,
                    rewarmed,
                    requested,
                    distrust,
                    rewarmFailures);
        }
    }

    private enum Rewarm {
        DONE,
        DROP,
        REQUESTED,
        WAITING
    }

    /** Archive classes by name: readable in one only where the store has no archive tier (Ceph RGW). */
    private static final Set<String> ARCHIVE_NAMED = Set.of("GLACIER", "DEEP_ARCHIVE");

    /**
     * Whether an object a warm point needs must be brought back: it cannot be read, or it sits in an
     * archive-named class of a store that serves it as it is (Ceph RGW: its GLACIER is an ordinary
     * pool, {@code placement} says READABLE) and is copied back to the written class at once.
     */
    private static boolean needsRewarm(ColdStorage.Placement p) {
        return !p.readable()
                || (p.readability() == ColdStorage.Readability.READABLE && ARCHIVE_NAMED.contains(p.storageClass()));
    }

    /** One step of bringing archived {@code key} back to the written class. */
    private Rewarm rewarm(String key) {
        ColdStorage.Placement p;
        try {
            p = store.placement(key);
        } catch (io.tidemark.core.PermanentException gone) {
            return Rewarm.DROP; // collected meanwhile: nothing to rewarm
        }
        switch (p.readability()) {
            case READABLE:
                if (!needsRewarm(p)) {
                    return Rewarm.DROP;
                }
                store.rewarm(key); // an archive-named class of a store without archive tier: copied back at once
                return Rewarm.DONE;
            case RESTORED:
                store.rewarm(key);
                return Rewarm.DONE;
            case RESTORING:
                return Rewarm.WAITING;
            default: // ARCHIVED
                try {
                    store.requestRestore(key, settings.restoreDays());
                    return Rewarm.REQUESTED;
                } catch (io.tidemark.core.PermanentException noRestore) {
                    // a store without archive restore (Ceph RGW 16: its archive-named classes are
                    // ordinary pools, readable as they are): copy it back directly; where the object
                    // really cannot be read, the copy fails too and the chunk stays pending
                    store.rewarm(key);
                    return Rewarm.DONE;
                }
        }
    }

    /** Renews the lock every third of its lease, so a live sweep keeps it and a dead one frees it soon. */
    private final class Renewal {
        private final EpochLock lock;
        private Instant renewedAt;

        Renewal(EpochLock lock) {
            this.lock = lock;
            this.renewedAt = clock.instant();
        }

        void maybe() {
            if (!clock.instant().isBefore(renewedAt.plus(settings.lockTtl().dividedBy(3)))) {
                lock.renew(clock, settings.lockTtl());
                renewedAt = clock.instant();
            }
        }

        /** Fencing before the ledger is written: a sweep that lost the lock writes no ledger. */
        void check() {
            maybe();
            if (!lock.stillHeld()) {
                throw new io.tidemark.core.RetriableException(
                        "the tier sweep lock of " + repository.target().describe()
                                + " was taken over while this sweep ran; its tags stand, the next sweep"
                                + " reads every tag");
            }
        }
    }

    /** The chunk keys {@code point} references: base chunks and patches, never index objects. */
    public static Set<String> chunkKeys(Repository repository, Manifest point) {
        return chunkKeys(repository, point, new HashMap<>(), new HashMap<>());
    }

    /** The chunk keys the disks of {@code point} that {@code disks} accepts reference. */
    public static Set<String> chunkKeys(
            Repository repository, Manifest point, java.util.function.Predicate<DiskEntry> disks) {
        return chunkKeys(repository, point, disks, new HashMap<>(), new HashMap<>());
    }

    private static Set<String> chunkKeys(
            Repository repository, Manifest point, Map<Digest, IndexRoot> roots, Map<Digest, IndexPage> pages) {
        return chunkKeys(repository, point, d -> true, roots, pages);
    }

    private static Set<String> chunkKeys(
            Repository repository,
            Manifest point,
            java.util.function.Predicate<DiskEntry> disks,
            Map<Digest, IndexRoot> roots,
            Map<Digest, IndexPage> pages) {
        Set<String> keys = new LinkedHashSet<>();
        for (DiskEntry disk : point.disks()) {
            if (!disks.test(disk)) {
                continue;
            }
            IndexRoot root = roots.computeIfAbsent(Digest.fromHex(disk.index()), repository::root);
            for (Digest pageDigest : root.pages()) {
                IndexPage page = pages.computeIfAbsent(pageDigest, repository::page);
                for (int i = 0; i < page.size(); i++) {
                    if (!page.get(i).isZero()) {
                        keys.add(ObjectKeys.chunk(page.get(i)));
                    }
                    if (!page.patch(i).isZero()) {
                        keys.add(ObjectKeys.chunk(page.patch(i)));
                    }
                }
            }
        }
        return keys;
    }
}
