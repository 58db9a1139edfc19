package io.tidemark.repository;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * The result of one recovery drill: a restore point restored in isolation and checked.
 *
 * @param vm the VM
 * @param location where the point was restored from ({@code local} or a target's name)
 * @param restorePoint the restore point's id
 * @param capturedAt its snapshot moment
 * @param at when the drill finished
 * @param rtoMillis measured recovery time: from the start of the drill until the check passed or
 *     failed (restore plus check)
 * @param rtoLimitMillis the RTO the VM's policy promises, if one does
 * @param check which check ran: {@code e2fsck} (an ext2/3/4 file system) or {@code chunk-digests}
 *     (the restored image re-read and every chunk compared with the index)
 * @param passed whether the check passed
 * @param detail what the check said (e2fsck's report, or the first mismatching chunk)
 */
public record DrillRecord(
        String vm,
        String location,
        String restorePoint,
        Instant capturedAt,
        Instant at,
        long rtoMillis,
        Long rtoLimitMillis,
        String check,
        boolean passed,
        String detail) {

    public Duration rto() {
        return Duration.ofMillis(rtoMillis);
    }

    public Optional<Duration> rtoLimit() {
        return Optional.ofNullable(rtoLimitMillis).map(Duration::ofMillis);
    }

    /** True when a policy promises an RTO and this drill took longer. */
    public boolean rtoViolated() {
        return rtoLimitMillis != null && rtoMillis > rtoLimitMillis;
    }
}
