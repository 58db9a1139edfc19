package io.tidemark.repository.maintenance;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PatchPack;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Checks a repository and repairs it from another one.
 *
 * <p>The metadata check reads every manifest, and every root and page they reference (each read
 * is verified against its digest), lists {@code chunks/} once and compares: a referenced chunk not
 * listed is missing. The deep check also reads every referenced chunk through the {@link
 * Repository}, which verifies it. Every problem names the object and the restore points it
 * affects. A problem whose restore points have all been pruned while the check ran is dropped, so
 * a verify running next to prune and GC reports no false alarms.
 *
 * <p>{@link #repair} fetches each bad object from another repository holding a good copy (a
 * replication target holds byte-identical objects), checks that copy, replaces the bad one
 * (delete, then put-if-absent) and reads it back.
 */
public final class Verifier {

    private final Repository repository;
    private final int parallelism;

    /** @param parallelism chunks read at once by the deep check */
    public Verifier(Repository repository, int parallelism) {
        this.repository = repository;
        this.parallelism = Math.max(1, parallelism);
    }

    /**
     * What a check found.
     *
     * @param manifests restore points checked
     * @param roots index roots referenced
     * @param pages index pages referenced
     * @param chunks distinct chunks referenced
     * @param chunkBytesRead plaintext bytes of the chunks the deep check read (0 without it)
     * @param problems everything wrong, each naming the restore points it affects
     */
    public record Report(
            int manifests, long roots, long pages, long chunks, long chunkBytesRead, List<Problem> problems) {
        public Report {
            problems = List.copyOf(problems);
        }

        public boolean clean() {
            return problems.isEmpty();
        }
    }

    /**
     * Checks the repository.
     *
     * @param deep also read and verify every referenced chunk
     * @param vm only the restore points of this VM; null for all
     * @param manifests progress of the metadata walk: (done, total) in manifests
     * @param chunkBytes progress of the deep check: (done, total) in plaintext bytes
     */
    public Report verify(boolean deep, String vm, Restorer.Progress manifests, Restorer.Progress chunkBytes) {
        References refs = References.mark(repository, vm, manifests::update);
        ObjectTarget target = repository.target();
        List<Problem> found = new ArrayList<>(refs.problems());
        Set<String> present = new HashSet<>(target.list(ObjectKeys.CHUNKS));
        List<String> toRead = new ArrayList<>();
        for (String chunk : refs.chunks()) {
            if (present.contains(chunk)) {
                toRead.add(chunk);
            } else {
                found.add(refs.withAffected(new Problem(chunk, Problem.Kind.MISSING, "not on the target", List.of())));
            }
        }
        long bytes = deep ? readChunks(toRead, refs, found, chunkBytes) : 0;
        List<Problem> still = stillAffecting(found);
        return new Report(
                refs.points().size(),
                refs.roots().size(),
                refs.pages().size(),
                refs.chunks().size(),
                bytes,
                still);
    }

    private long readChunks(List<String> keys, References refs, List<Problem> found, Restorer.Progress progress) {
        int chunkSize = repository.config().chunkSize();
        long total = (long) keys.size() * chunkSize;
        AtomicLong done = new AtomicLong();
        AtomicLong plain = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, DaemonThreads.named("verify"));
        try {
            List<Future<Problem>> inFlight = new ArrayList<>();
            for (String key : keys) {
                inFlight.add(pool.submit(() -> {
                    Problem p = readChunk(key, chunkSize, plain, refs);
                    progress.update(done.addAndGet(chunkSize), total);
                    return p;
                }));
                if (inFlight.size() >= parallelism * 4) {
                    collect(inFlight.remove(0), refs, found);
                }
            }
            for (Future<Problem> f : inFlight) {
                collect(f, refs, found);
            }
        } finally {
            pool.shutdownNow();
        }
        progress.update(total, total);
        return plain.get();
    }

    /** How pack {@code pack} differs from what index page {@code s.pageKey()} records of entry {@code s.entry()}. */
    static Optional<String> packSlotProblem(PatchPack pack, References.PackSlot s) {
        ChunkPatch slot = pack.slots().get(s.entry());
        String of = " (index page " + s.pageKey() + ", entry " + s.entry() + ")";
        if (slot == null) {
            return Optional.of("pack has no patch for an index entry that names it" + of);
        }
        if (!slot.base().equals(s.base())) {
            return Optional.of("pack slot is for base " + slot.base() + ", its index page names " + s.base() + of);
        }
        if (pack.slotBytes(s.entry()) != s.slotBytes()) {
            return Optional.of("pack slot holds " + pack.slotBytes(s.entry()) + " bytes, its index page records "
                    + s.slotBytes() + of);
        }
        if (pack.bytes() != s.packBytes()) {
            return Optional.of(
                    "pack's slots hold " + pack.bytes() + " bytes, its index page records " + s.packBytes() + of);
        }
        return Optional.empty();
    }

    private Problem readChunk(String key, int chunkSize, AtomicLong plain, References refs) {
        try {
            Optional<Set<References.PackSlot>> slots = refs.packSlots(key);
            if (slots.isPresent()) { // a pack (ADR 26): verified, parsed, each slot as every page naming it records
                PatchPack pack = repository.pack(References.digestOf(key));
                for (References.PackSlot s : slots.get()) {
                    Optional<String> wrong = packSlotProblem(pack, s);
                    if (wrong.isPresent()) {
                        return new Problem(key, Problem.Kind.CORRUPT, wrong.get(), List.of());
                    }
                }
                plain.addAndGet(pack.slots().values().stream()
                        .mapToLong(ChunkPatch::dataBytes)
                        .sum());
                return null;
            }
            Optional<Digest> base = refs.patchBase(key);
            if (base.isPresent()) { // a patch (ADR 15): verified, parsed, and on the base its index names
                ChunkPatch patch = repository.patch(References.digestOf(key));
                if (!patch.base().equals(base.get())) {
                    return new Problem(
                            key,
                            Problem.Kind.CORRUPT,
                            "patch is for base " + patch.base() + ", its index page names " + base.get(),
                            List.of());
                }
                plain.addAndGet(patch.dataBytes());
                return null;
            }
            plain.addAndGet(repository.chunk(References.digestOf(key), chunkSize).length);
            return null;
        } catch (CorruptObjectException e) {
            return new Problem(key, Problem.Kind.CORRUPT, e.getMessage(), List.of());
        } catch (PermanentException e) {
            if (repository.target().exists(key)) {
                throw e;
            }
            return new Problem(key, Problem.Kind.MISSING, "not on the target", List.of());
        }
    }

    private static void collect(Future<Problem> f, References refs, List<Problem> found) {
        try {
            Problem p = f.get();
            if (p != null) {
                found.add(refs.withAffected(p));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("verify interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            throw new IllegalStateException("bug in verify", e.getCause());
        }
    }

    /** Drops problems whose restore points were all pruned during the check (their objects may be swept). */
    private List<Problem> stillAffecting(List<Problem> found) {
        List<Problem> out = new ArrayList<>();
        for (Problem p : found) {
            List<PointRef> alive = p.affected().stream()
                    .filter(r -> repository.target().exists(ObjectKeys.manifest(r.vm(), r.restorePointId())))
                    .toList();
            if (!alive.isEmpty()) {
                out.add(new Problem(p.key(), p.kind(), p.detail(), alive));
            }
        }
        return out;
    }

    /**
     * What a repair did for one problem.
     *
     * @param repaired the object is now good on this repository
     * @param outcome what happened, or why it could not be repaired and what to do instead
     */
    public record Repair(Problem problem, boolean repaired, String outcome) {}

    /**
     * Replaces every bad object named in {@code problems} with the good copy {@code source} holds.
     * An object {@code source} lacks too, or holds corrupt too, stays unrepaired; so does one under
     * an immutability lock (Object Lock), which cannot be replaced in place.
     */
    public List<Repair> repair(List<Problem> problems, Repository source, Clock clock) {
        List<Repair> out = new ArrayList<>();
        for (Problem p : problems) {
            out.add(repairOne(p, source, clock.instant()));
        }
        return out;
    }

    private Repair repairOne(Problem p, Repository source, Instant now) {
        ObjectTarget target = repository.target();
        String key = p.key();
        Optional<byte[]> copy = source.target().get(key);
        if (copy.isEmpty()) {
            return new Repair(
                    p,
                    false,
                    source.describe() + " lacks it too; restore the affected points from another"
                            + " target that holds them, or drop them");
        }
        try {
            source.checkObject(key, copy.get());
        } catch (CorruptObjectException e) {
            return new Repair(p, false, "the copy on " + source.describe() + " is corrupt too: " + e.getMessage());
        }
        Optional<Instant> locked = target.retainUntil(key);
        if (locked.isPresent() && locked.get().isAfter(now)) {
            return new Repair(
                    p,
                    false,
                    "locked (Object Lock) until " + locked.get()
                            + ": it cannot be replaced in place. A repair needs a new object version: copy the good"
                            + " object from " + source.describe() + " over it with your S3 tool (e.g. `aws s3 cp`;"
                            + " the versioned bucket then serves the new version, the locked one stays until its"
                            + " retention ends), or restore the affected points from " + source.describe());
        }
        if (p.kind() != Problem.Kind.MISSING) {
            target.delete(key);
        }
        target.putIfAbsent(key, copy.get());
        Optional<byte[]> back = target.get(key);
        if (back.isEmpty()) {
            return new Repair(
                    p,
                    false,
                    "written from " + source.describe() + " but not readable back from " + target.describe()
                            + "; check the target and run verify again");
        }
        try {
            repository.checkObject(key, back.get());
        } catch (CorruptObjectException e) {
            return new Repair(
                    p,
                    false,
                    "written from " + source.describe() + " but the read-back fails: " + e.getMessage()
                            + "; the target may be damaging data");
        }
        return new Repair(p, true, "replaced with the good copy from " + source.describe());
    }
}
