package io.tidemark.workers;

import io.tidemark.core.hypervisor.ChangedRange;
import io.tidemark.workers.nbd.Extent;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A {@link BlockSource} whose dirty map comes from the storage instead of a QEMU bitmap (ADR 18): it
 * answers the context {@link #CONTEXT} from the export's {@link
 * io.tidemark.core.hypervisor.DiskExport#changedRanges() changed ranges}, as a {@code
 * qemu:dirty-bitmap:*} context would be answered, and passes everything else to the source.
 */
final class ChangedRangesBlockSource implements BlockSource {

    /** The context name under which the changed ranges are read. */
    static final String CONTEXT = "tidemark:changed-ranges";

    private final BlockSource source;
    private final List<ChangedRange> ranges;

    ChangedRangesBlockSource(BlockSource source, List<ChangedRange> ranges) {
        this.source = source;
        this.ranges = List.copyOf(ranges);
    }

    @Override
    public long size() {
        return source.size();
    }

    @Override
    public List<Extent> extents(String context, long offset, long length) {
        if (!context.equals(CONTEXT)) {
            return source.extents(context, offset, length);
        }
        List<Extent> out = new ArrayList<>();
        long end = offset + length;
        long at = offset;
        for (ChangedRange r : ranges) {
            long from = Math.max(r.offset(), at);
            long to = Math.min(r.offset() + r.length(), end);
            if (to <= from) {
                continue;
            }
            if (from > at) {
                out.add(new Extent(at, from - at, 0));
            }
            out.add(new Extent(from, to - from, Extent.DIRTY));
            at = to;
        }
        if (at < end) {
            out.add(new Extent(at, end - at, 0));
        }
        return out;
    }

    @Override
    public CompletableFuture<byte[]> read(long offset, int length) {
        return source.read(offset, length);
    }

    @Override
    public CompletableFuture<Void> readInto(long offset, int length, byte[] into) {
        return source.readInto(offset, length, into);
    }

    @Override
    public void close() {
        source.close();
    }
}
