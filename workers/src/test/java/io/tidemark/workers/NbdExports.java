package io.tidemark.workers;

import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.nbd.NbdClient;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** Reads captured exports in ITs with the engine's own NBD client. */
public final class NbdExports {

    private static final int MIB = 1 << 20;

    private NbdExports() {}

    /** The dirty extents of an incremental export as {offset, length}. */
    public static List<long[]> dirtyExtents(DiskExport e) {
        try (NbdClient c = NbdClient.connect(e)) {
            return c.blockStatus(e.dirtyBitmapContext().orElseThrow(), 0, c.size()).stream()
                    .filter(Extent::dirty)
                    .map(x -> new long[] {x.offset(), x.length()})
                    .toList();
        }
    }

    /** The dirty extents of an incremental export, as "offset+length". */
    public static List<String> dirtyRanges(DiskExport e) {
        return dirtyExtents(e).stream().map(x -> x[0] + "+" + x[1]).toList();
    }

    /** The whole export, reading only what base:allocation does not report as zeros. */
    public static byte[] readAll(DiskExport e) {
        try (NbdClient c = NbdClient.connect(e)) {
            byte[] out = new byte[(int) c.size()];
            List<CompletableFuture<Void>> reads = new ArrayList<>();
            for (Extent x : c.blockStatus(NbdClient.BASE_ALLOCATION, 0, c.size())) {
                if (x.zero()) {
                    continue;
                }
                for (long off = x.offset(); off < x.end(); off += MIB) {
                    long at = off;
                    int n = (int) Math.min(MIB, x.end() - off);
                    reads.add(c.readAsync(at, n).thenAccept(b -> System.arraycopy(b, 0, out, (int) at, n)));
                }
            }
            reads.forEach(CompletableFuture::join);
            return out;
        }
    }
}
