package io.tidemark.repository;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.ObjectKeys;
import java.util.HashSet;
import java.util.Set;

/**
 * What one restore point occupies at a location: the distinct non-zero chunks its disks reference
 * (shared with other points or not), their size before and as stored (compressed, and encrypted when
 * the repository is). Found by reading the point's index and every chunk it references once, so it
 * costs a read of the point's data from the location; what {@code tidemark show --stored} reports.
 *
 * @param chunks distinct non-zero chunks referenced
 * @param logicalBytes their size before compression (all-zero chunks are never stored)
 * @param storedBytes their size as stored objects
 * @param missing referenced chunks the location does not hold (run {@code tidemark verify})
 */
public record PointFootprint(long chunks, long logicalBytes, long storedBytes, long missing) {

    /** The footprint of {@code point} in {@code repository}. */
    public static PointFootprint of(Repository repository, Manifest point) {
        Set<Digest> seen = new HashSet<>();
        long logical = 0;
        long stored = 0;
        long missing = 0;
        for (DiskEntry disk : point.disks()) {
            IndexRoot root = repository.root(Digest.fromHex(disk.index()));
            long offset = 0;
            for (int p = 0; p < root.pages().size(); p++) {
                IndexPage page = repository.page(root.pages().get(p));
                for (int i = 0; i < page.size(); i++, offset += root.chunkSize()) {
                    Digest patch = page.patch(i);
                    if (!patch.isZero() && seen.add(patch)) { // a patch (ADR 15): stored bytes, no logical ones
                        var object = repository.target().get(ObjectKeys.chunk(patch));
                        if (object.isPresent()) {
                            stored += object.get().length;
                        } else {
                            missing++;
                        }
                    }
                    Digest d = page.get(i);
                    if (d.isZero() || !seen.add(d)) {
                        continue;
                    }
                    logical += Math.min(root.chunkSize(), root.diskSize() - offset);
                    var object = repository.target().get(ObjectKeys.chunk(d));
                    if (object.isPresent()) {
                        stored += object.get().length;
                    } else {
                        missing++;
                    }
                }
            }
        }
        return new PointFootprint(seen.size(), logical, stored, missing);
    }
}
