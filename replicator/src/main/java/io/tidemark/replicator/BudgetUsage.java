package io.tidemark.replicator;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.repository.Repository;
import java.util.HashMap;
import java.util.Map;

/**
 * What a set of one VM's restore points occupies at one location, as capacity budgets count it:
 * the distinct non-zero chunks the points reference, each once however many points (or disks, or
 * offsets) share it, at its size before compression. Points share most of their chunks, so this is
 * far less than the sum of their sizes; a chunk shared with another VM counts for each VM. Index
 * pages and manifests are not counted (a few bytes per chunk). The size before compression is an
 * upper bound of the stored size (all-zero chunks are never stored; compression only shrinks a
 * chunk, encryption adds 28 bytes) that is known from the indexes alone, without reading a chunk.
 *
 * <p>Points are {@link #add added} and {@link #remove removed} one at a time, so retention can ask
 * how much removing one frees. Index pages are read once (they are content-addressed, so shared
 * pages are read once for all points). Not thread-safe.
 */
final class BudgetUsage {

    private final Repository repository;
    private final Map<Digest, IndexPage> pages = new HashMap<>();
    private final Map<Digest, IndexRoot> roots = new HashMap<>();
    /** Per chunk: how many points in the set reference it, and its size. */
    private final Map<Digest, long[]> chunks = new HashMap<>();

    private long bytes;

    BudgetUsage(Repository repository) {
        this.repository = repository;
    }

    /** The bytes the points in the set occupy. */
    long bytes() {
        return bytes;
    }

    /** Adds {@code point} to the set. */
    void add(Manifest point) {
        distinctChunks(point).forEach((digest, size) -> {
            long[] ref = chunks.computeIfAbsent(digest, d -> new long[] {0, size});
            if (ref[0]++ == 0) {
                bytes += ref[1];
            }
        });
    }

    /** Removes {@code point}, which was {@link #add added}, from the set. */
    void remove(Manifest point) {
        distinctChunks(point).forEach((digest, size) -> {
            long[] ref = chunks.get(digest);
            if (ref != null && --ref[0] == 0) {
                bytes -= ref[1];
                chunks.remove(digest);
            }
        });
    }

    /** What {@code point} alone occupies: the size of one full restore point of the VM. */
    long alone(Manifest point) {
        return distinctChunks(point).values().stream()
                .mapToLong(Long::longValue)
                .sum();
    }

    /** What {@code point}, which is in the set, occupies that no other point of the set shares. */
    long own(Manifest point) {
        long own = 0;
        for (Digest d : distinctChunks(point).keySet()) {
            long[] ref = chunks.get(d);
            if (ref != null && ref[0] == 1) {
                own += ref[1];
            }
        }
        return own;
    }

    private Map<Digest, Long> distinctChunks(Manifest point) {
        Map<Digest, Long> out = new HashMap<>();
        for (DiskEntry disk : point.disks()) {
            Digest rootDigest = Digest.fromHex(disk.index());
            IndexRoot root = roots.computeIfAbsent(rootDigest, repository::root);
            long offset = 0;
            for (Digest pageDigest : root.pages()) {
                IndexPage page = pages.computeIfAbsent(pageDigest, repository::page);
                for (int i = 0; i < page.size(); i++, offset += root.chunkSize()) {
                    Digest d = page.get(i);
                    if (!d.isZero()) {
                        out.putIfAbsent(d, Math.min(root.chunkSize(), root.diskSize() - offset));
                    }
                }
            }
        }
        return out;
    }
}
