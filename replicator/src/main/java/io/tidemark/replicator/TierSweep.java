package io.tidemark.replicator;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Tier;
import io.tidemark.repository.Repository;
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
 * warmer tier is untagged; if it already moved to an archive class it is reported as {@link
 * Report#rewarm}: a restore of that point will wait for a cold restore.
 *
 * <p>Costs one tag read per referenced chunk per sweep, plus one write per change. Not
 * thread-safe; one sweep per location at a time (docs/design.md §8).
 */
public final class TierSweep {

    /**
     * What a sweep did.
     *
     * @param chunks distinct chunks referenced at the location
     * @param tagged chunks newly tagged, per storage class
     * @param untagged chunks whose tag was removed because a warmer point needs them
     * @param rewarm chunks already in an archive class that a point in a readable tier needs
     */
    public record Report(int chunks, Map<String, Integer> tagged, int untagged, List<String> rewarm) {
        public Report {
            tagged = Map.copyOf(tagged);
            rewarm = List.copyOf(rewarm);
        }
    }

    private final String location;
    private final Repository repository;
    private final ColdStorage store;

    public TierSweep(String location, Repository repository, ColdStorage store) {
        this.location = Objects.requireNonNull(location, "location");
        this.repository = Objects.requireNonNull(repository, "repository");
        this.store = Objects.requireNonNull(store, "store");
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

    /** Tags and untags chunks as {@link #plan} decides. */
    public Report run(PolicySet policies, Instant now) {
        Map<String, Optional<String>> plan = plan(policies, now);
        Map<String, Integer> tagged = new TreeMap<>();
        int untagged = 0;
        List<String> rewarm = new java.util.ArrayList<>();
        for (Map.Entry<String, Optional<String>> e : plan.entrySet()) {
            Optional<String> have = store.tierTag(e.getKey());
            if (have.equals(e.getValue())) {
                continue;
            }
            store.tagTier(e.getKey(), e.getValue());
            if (e.getValue().isPresent()) {
                tagged.merge(e.getValue().get(), 1, Integer::sum);
            } else {
                untagged++;
                if (!store.placement(e.getKey()).readable()) {
                    rewarm.add(e.getKey());
                }
            }
        }
        return new Report(plan.size(), tagged, untagged, rewarm);
    }

    /** The chunk keys {@code point} references: base chunks and patches, never index objects. */
    public static Set<String> chunkKeys(Repository repository, Manifest point) {
        return chunkKeys(repository, point, new HashMap<>(), new HashMap<>());
    }

    private static Set<String> chunkKeys(
            Repository repository, Manifest point, Map<Digest, IndexRoot> roots, Map<Digest, IndexPage> pages) {
        Set<String> keys = new LinkedHashSet<>();
        for (DiskEntry disk : point.disks()) {
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
