package io.tidemark.repository.maintenance;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The mark phase shared by {@link Verifier} and {@link GarbageCollector}: every root, page and
 * chunk that the manifests present at the time of the walk reference, and which restore points
 * each belongs to. Each root and page is read (and so verified) once however many points share
 * it. A manifest removed during the walk (prune) is skipped; one that cannot be parsed, and roots
 * and pages that are missing or corrupt, are recorded as {@link Problem}s — the walk goes on.
 */
final class References {

    private final Repository repository;
    /** rootKey → points; pageKey → rootKeys; chunkKey → pageKeys. Insertion-ordered for stable reports. */
    private final Map<String, List<PointRef>> pointsByRoot = new LinkedHashMap<>();

    private final Map<String, List<String>> rootsByPage = new LinkedHashMap<>();
    private final Map<String, List<String>> pagesByChunk = new HashMap<>();
    /** Patch key → the base digest its page names (ADR 15); patches are also in pagesByChunk. */
    private final Map<String, Digest> patchBases = new HashMap<>();
    /**
     * Pack key → the page entries whose patch is its slot, each with the base digest its page names
     * (ADR 26). Entries of a pack named by several pages (the same page of later points) agree: a
     * pack holds one page's patches, and its name is the digest of its payload.
     */
    /** Pack key → what the pages that name it record about their slots (ADR 26), one per page and entry. */
    private final Map<String, Set<PackSlot>> packSlots = new HashMap<>();

    private final Map<String, Problem> problems = new LinkedHashMap<>();
    private final List<PointRef> points = new ArrayList<>();

    private References(Repository repository) {
        this.repository = repository;
    }

    /**
     * Walks the manifests of {@code vm}, or of every VM when it is null.
     *
     * @param onManifest called after each manifest with (done, total)
     */
    static References mark(Repository repository, String vm, ProgressListener onManifest) {
        References r = new References(repository);
        String prefix = vm == null ? ObjectKeys.MANIFESTS : ObjectKeys.manifestPrefix(vm);
        List<String> keys = repository.target().list(prefix);
        int done = 0;
        for (String key : keys) {
            r.visitManifest(key);
            onManifest.update(++done, keys.size());
        }
        return r;
    }

    /** Receives progress as (done, total). */
    @FunctionalInterface
    interface ProgressListener {
        void update(long done, long total);

        ProgressListener NONE = (done, total) -> {};
    }

    private void visitManifest(String key) {
        String id = ObjectKeys.restorePointIdOf(key);
        if (id == null) {
            return;
        }
        String vm = key.substring(ObjectKeys.MANIFESTS.length(), key.lastIndexOf('/'));
        PointRef point = new PointRef(vm, id);
        Manifest m;
        List<Digest> roots = new ArrayList<>();
        try {
            // from the target, not the repository's cache: a cached copy would hide a damaged object
            var read = repository.target().get(key);
            if (read.isEmpty()) {
                return; // removed by prune since the listing
            }
            m = repository.parseManifest(key, read.get());
            for (DiskEntry disk : m.disks()) {
                roots.add(Digest.fromHex(disk.index()));
            }
        } catch (CorruptObjectException | IllegalArgumentException e) {
            problems.put(key, new Problem(key, Problem.Kind.BAD_MANIFEST, e.getMessage(), List.of(point)));
            return;
        }
        points.add(point);
        for (Digest root : roots) {
            String rootKey = ObjectKeys.root(root);
            List<PointRef> owners = pointsByRoot.get(rootKey);
            if (owners != null) {
                owners.add(point);
                continue;
            }
            owners = new ArrayList<>();
            owners.add(point);
            pointsByRoot.put(rootKey, owners);
            IndexRoot index = read(rootKey, () -> repository.root(root));
            if (index != null) {
                for (Digest page : index.pages()) {
                    visitPage(rootKey, page);
                }
            }
        }
    }

    private void visitPage(String rootKey, Digest page) {
        String pageKey = ObjectKeys.page(page);
        List<String> roots = rootsByPage.get(pageKey);
        if (roots != null) {
            if (!roots.contains(rootKey)) {
                roots.add(rootKey);
            }
            return;
        }
        roots = new ArrayList<>(1);
        roots.add(rootKey);
        rootsByPage.put(pageKey, roots);
        IndexPage p = read(pageKey, () -> repository.page(page));
        if (p == null) {
            return;
        }
        for (int i = 0; i < p.size(); i++) {
            Digest d = p.get(i);
            if (!d.isZero()) {
                referencedBy(ObjectKeys.chunk(d), pageKey);
            }
            Digest patch = p.patch(i);
            if (!patch.isZero()) { // a patch (ADR 15) lives in the chunk key space, kept and checked like a chunk
                referencedBy(ObjectKeys.chunk(patch), pageKey);
                if (p.packed(i)) { // a pack (ADR 26): its slot for this entry must be as this page records it
                    packSlots
                            .computeIfAbsent(ObjectKeys.chunk(patch), k -> new LinkedHashSet<>())
                            .add(new PackSlot(pageKey, i, d, p.slotBytes(i), p.packBytes(patch)));
                } else {
                    patchBases.put(ObjectKeys.chunk(patch), d);
                }
            }
        }
    }

    private void referencedBy(String chunkKey, String pageKey) {
        List<String> pages = pagesByChunk.computeIfAbsent(chunkKey, k -> new ArrayList<>(1));
        if (!pages.contains(pageKey)) {
            pages.add(pageKey);
        }
    }

    /**
     * The base chunk the index names for patch {@code key} (ADR 15), or empty when {@code key} is
     * not a patch (a chunk). A patch named by two pages has the same base in both: its payload
     * names the base, and its name is the digest of its payload.
     */
    Optional<Digest> patchBase(String key) {
        return Optional.ofNullable(patchBases.get(key));
    }

    /**
     * What an index page records about one entry's slot in a pack (ADR 26): the slot's base chunk,
     * its bytes, and the bytes of all the pack's slots (what a writer reads to decide a repack).
     */
    record PackSlot(String pageKey, int entry, Digest base, int slotBytes, int packBytes) {}

    /**
     * What every page that names pack {@code key} records about its slots, however many pages (of
     * however many points) name it; empty when {@code key} is no pack.
     */
    Optional<Set<PackSlot>> packSlots(String key) {
        return Optional.ofNullable(packSlots.get(key));
    }

    private interface Read<T> {
        T get();
    }

    /** Reads a root or page; a missing or corrupt one becomes a problem and null. */
    private <T> T read(String key, Read<T> read) {
        try {
            return read.get();
        } catch (CorruptObjectException e) {
            problems.put(key, new Problem(key, Problem.Kind.CORRUPT, e.getMessage(), List.of()));
            return null;
        } catch (PermanentException e) {
            if (repository.target().exists(key)) {
                throw e; // not a missing object: credentials, permissions… let the caller say so
            }
            problems.put(key, new Problem(key, Problem.Kind.MISSING, "not on the target", List.of()));
            return null;
        }
    }

    /** The restore points whose manifests were read. */
    List<PointRef> points() {
        return points;
    }

    Set<String> roots() {
        return pointsByRoot.keySet();
    }

    Set<String> pages() {
        return rootsByPage.keySet();
    }

    Set<String> chunks() {
        return pagesByChunk.keySet();
    }

    /** Whether {@code key} (a root, page or chunk) is referenced. */
    boolean references(String key) {
        return pointsByRoot.containsKey(key) || rootsByPage.containsKey(key) || pagesByChunk.containsKey(key);
    }

    /** The problems the walk found, each naming the restore points it affects. */
    List<Problem> problems() {
        List<Problem> out = new ArrayList<>();
        for (Problem p : problems.values()) {
            out.add(p.kind() == Problem.Kind.BAD_MANIFEST ? p : withAffected(p));
        }
        return out;
    }

    /** {@code p} with the restore points that reference its object. */
    Problem withAffected(Problem p) {
        return new Problem(p.key(), p.kind(), p.detail(), List.copyOf(affected(p.key())));
    }

    /** The restore points that need object {@code key}, sorted. */
    Set<PointRef> affected(String key) {
        Set<PointRef> out = new TreeSet<>();
        if (key.startsWith(ObjectKeys.CHUNKS)) {
            for (String page : pagesByChunk.getOrDefault(key, List.of())) {
                out.addAll(affected(page));
            }
        } else if (key.startsWith(ObjectKeys.PAGES)) {
            for (String root : rootsByPage.getOrDefault(key, List.of())) {
                out.addAll(affected(root));
            }
        } else {
            out.addAll(pointsByRoot.getOrDefault(key, List.of()));
        }
        return out;
    }

    /** The digest a content-addressed key ({@code chunks/ab/abcd…}) names. */
    static Digest digestOf(String key) {
        return Digest.fromHex(key.substring(key.lastIndexOf('/') + 1));
    }
}
