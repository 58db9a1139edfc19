package io.tidemark.workers;

import io.tidemark.format.ChunkPatch;
import io.tidemark.workers.nbd.Extent;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collections;
import java.util.List;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Which dirty chunks of an incremental are read as their dirty ranges only and stored as patches
 * (ADR 15): those whose dirty bytes are at most the patch bound. Built from the dirty extents,
 * which come at the bitmap's granularity; a chunk with more dirty bytes is read whole.
 *
 * @param chunkSize the repository's chunk size
 * @param chunks the chunk numbers of the plan
 * @param ranges per chunk of the plan, its dirty ranges (offsets within the chunk, increasing, not touching)
 * @param bytes the dirty bytes of the plan (what it reads, unless a chunk falls back to whole)
 */
record PatchPlan(int chunkSize, BitSet chunks, SortedMap<Long, List<ChunkPatch.Range>> ranges, long bytes) {

    static final PatchPlan NONE = new PatchPlan(1, new BitSet(), Collections.emptySortedMap(), 0);

    /**
     * @param extents the dirty-bitmap extents of the whole disk
     * @param dirty the chunks they make dirty
     */
    static PatchPlan of(List<Extent> extents, BitSet dirty, int chunkSize, long size, int maxPatchBytes) {
        TreeMap<Long, List<ChunkPatch.Range>> ranges = new TreeMap<>();
        BitSet tooBig = new BitSet();
        for (Extent e : extents) {
            if (!e.dirty()) {
                continue;
            }
            long end = Math.min(e.end(), size);
            for (long at = e.offset(); at < end; ) {
                long chunkNo = at / chunkSize;
                long chunkStart = chunkNo * chunkSize;
                long to = Math.min(end, chunkStart + chunkSize);
                if (!tooBig.get((int) chunkNo)) {
                    add(ranges.computeIfAbsent(chunkNo, k -> new ArrayList<>()), (int) (at - chunkStart), (int)
                            (to - at));
                    if (covered(ranges.get(chunkNo)) > maxPatchBytes) {
                        ranges.remove(chunkNo);
                        tooBig.set((int) chunkNo);
                    }
                }
                at = to;
            }
        }
        BitSet chunks = new BitSet();
        long bytes = 0;
        for (var c : ranges.entrySet()) {
            if (dirty.get(Math.toIntExact(c.getKey()))) {
                chunks.set(Math.toIntExact(c.getKey()));
                bytes += covered(c.getValue());
            }
        }
        ranges.keySet().removeIf(c -> !chunks.get(Math.toIntExact(c)));
        return new PatchPlan(chunkSize, chunks, Collections.unmodifiableSortedMap(ranges), bytes);
    }

    /** Adds {@code [offset, offset+length)} to {@code list}, merging it with a range it touches at the end. */
    private static void add(List<ChunkPatch.Range> list, int offset, int length) {
        if (!list.isEmpty()) {
            ChunkPatch.Range last = list.get(list.size() - 1);
            if (offset <= last.end()) { // extents come in disk order
                int end = Math.max(last.end(), offset + length);
                list.set(list.size() - 1, new ChunkPatch.Range(last.offset(), end - last.offset()));
                return;
            }
        }
        list.add(new ChunkPatch.Range(offset, length));
    }

    private static long covered(List<ChunkPatch.Range> list) {
        long n = 0;
        for (ChunkPatch.Range r : list) {
            n += r.length();
        }
        return n;
    }
}
