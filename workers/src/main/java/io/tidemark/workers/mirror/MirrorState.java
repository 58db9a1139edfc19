package io.tidemark.workers.mirror;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * What the supervisor last saw of one disk's mirror, kept in memory for status and metrics.
 *
 * @param vm the protected VM
 * @param disk the guest device id of the disk
 * @param target the DR export, as a URI
 * @param phase where the mirror is
 * @param remainingBytes what QEMU still has to copy ({@code len - offset} of the job)
 * @param lag zero while the mirror is in sync, else the time since it was last seen in sync (or
 *     since protection started, if it never was); an upper bound of the age of the oldest completed
 *     guest write the DR site may lack, one poll interval conservative
 * @param lastInSync when the mirror was last seen in sync
 * @param problem why the mirror is not in sync, when known (the DR link, QEMU, the monitor)
 */
public record MirrorState(
        String vm,
        String disk,
        String target,
        Phase phase,
        long remainingBytes,
        Duration lag,
        Optional<Instant> lastInSync,
        Optional<String> problem) {

    /** Where a mirror is. */
    public enum Phase {
        /** Not started yet, or QEMU's monitor did not answer the last poll. */
        UNKNOWN,
        /** Copying the disk (first start, or after QEMU restarted). */
        SYNCING,
        /** Every completed guest write is at the DR site. */
        IN_SYNC,
        /** The DR link failed; guest writes are marked dirty and resynchronised when it returns. */
        OUTAGE
    }

    /** True when every completed guest write is at the DR site. */
    public boolean inSync() {
        return phase == Phase.IN_SYNC;
    }
}
