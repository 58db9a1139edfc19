package io.tidemark.repository;

import java.time.Instant;
import java.util.List;

/**
 * Which chunks of one disk a guest read while it booted from an instant restore, in the order it
 * first read them: mutable state beside the points ({@code state/boot-reads/<vm>/<disk>/…}, see
 * {@link BootReadLog}), never part of a restore point. A later instant restore of any point of the
 * same VM fetches these chunk numbers before the guest asks for them (boot reads land on nearly the
 * same chunk numbers from point to point).
 *
 * @param version the trace format, {@value #VERSION}; a reader refuses other versions
 * @param vm the VM
 * @param disk the disk's name in the point
 * @param restorePoint the point that was being served when the trace was taken
 * @param at when the trace ended
 * @param chunkSize the chunk size the numbers count in (a trace of another chunk size is not used)
 * @param chunks chunk numbers, first read first, each once, at most {@link BootReadLog#MAX_CHUNKS}
 */
public record BootReadTrace(
        int version, String vm, String disk, String restorePoint, Instant at, int chunkSize, List<Long> chunks) {

    /** The only trace format so far. */
    public static final int VERSION = 1;

    public BootReadTrace {
        chunks = List.copyOf(chunks);
    }
}
