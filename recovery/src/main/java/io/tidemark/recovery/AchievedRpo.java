package io.tidemark.recovery;

import io.tidemark.workers.mirror.DrPoint;
import io.tidemark.workers.mirror.MirrorRecord;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.Optional;

/**
 * The RPO a failover of a continuously protected VM achieved (ADR 22): how much of the guest's
 * completed writes the DR VM may lack, from the mirror state record the primary's engine wrote
 * ({@link MirrorRecord}) and the moment the primary was lost. Never under-reports: when the
 * figure is a bound it says so ({@link #upperBound()}), and without a record it is unknown, not 0.
 *
 * @param rpo the achieved RPO; empty when unknown
 * @param upperBound true when {@code rpo} is an upper bound (the true loss may be smaller), false
 *     when it is the value itself (0 for a mirror in sync when last heard)
 * @param dataAsOf the moment up to which the booted disks hold every completed guest write
 * @param lastHeardAt when the primary's engine last wrote the record
 * @param primaryLostAt the moment the primary is taken to be lost
 * @param lostAtFrom where {@code primaryLostAt} comes from: {@code operator} (--primary-lost-at),
 *     {@code heartbeat} (last heard + two heartbeats: the next record never came, allowing it to
 *     be one heartbeat late), or {@code now}
 * @param note one sentence for the operator: what the figure means or why it is unknown
 */
public record AchievedRpo(
        Optional<Duration> rpo,
        boolean upperBound,
        Optional<Instant> dataAsOf,
        Optional<Instant> lastHeardAt,
        Optional<Instant> primaryLostAt,
        String lostAtFrom,
        String note) {

    /**
     * The RPO of booting the replica itself ("now").
     *
     * @param record the newest mirror state record, if one was found
     * @param operatorLostAt when the operator says the primary was lost
     * @param now the failover's start
     * @param where where the record was looked for, for the message when there is none
     */
    public static AchievedRpo ofReplica(
            Optional<MirrorRecord> record, Optional<Instant> operatorLostAt, Instant now, String where) {
        if (record.isEmpty()) {
            return new AchievedRpo(
                    Optional.empty(),
                    true,
                    Optional.empty(),
                    Optional.empty(),
                    operatorLostAt,
                    operatorLostAt.isPresent() ? "operator" : "unknown",
                    "no mirror state record at " + where + ": achieved RPO unknown (is the plan's source a location"
                            + " the continuous policy names in targets:, or the primary repository? ADR 22)");
        }
        MirrorRecord r = record.get();
        Instant lost = lostAt(r, operatorLostAt, now);
        String from = operatorLostAt.isPresent() && lost.equals(operatorLostAt.get()) ? "operator" : "heartbeat";
        Optional<Instant> asOf = r.dataAsOf();
        if (asOf.isEmpty()) {
            return new AchievedRpo(
                    Optional.empty(),
                    true,
                    Optional.empty(),
                    Optional.of(r.writtenAt()),
                    Optional.of(lost),
                    from,
                    "the replica never finished its first copy when last heard (" + r.phases()
                            + "): it is not a complete disk; fail over to a DR point or from restore points");
        }
        if (r.inSync()) {
            Instant silentBy = r.writtenAt().plus(r.heartbeat()).plus(r.heartbeat());
            if (operatorLostAt.isPresent() && operatorLostAt.get().isAfter(silentBy)) {
                Duration gap = Duration.between(r.writtenAt(), operatorLostAt.get());
                return new AchievedRpo(
                        Optional.of(gap),
                        true,
                        asOf,
                        Optional.of(r.writtenAt()),
                        operatorLostAt,
                        from,
                        "in sync when last heard at " + r.writtenAt() + ", but the primary was lost " + human(gap)
                                + " later: the records stopped first, so the mirror may have left sync unseen");
            }
            return new AchievedRpo(
                    Optional.of(Duration.ZERO),
                    false,
                    asOf,
                    Optional.of(r.writtenAt()),
                    Optional.of(lost),
                    from,
                    "in sync when last heard at " + r.writtenAt() + ": the write-blocking mirror completed every"
                            + " guest write only once the DR site had it (a link break in the last "
                            + human(r.heartbeat()) + " before the loss would not be recorded)");
        }
        Duration rpo = positive(Duration.between(asOf.get(), lost));
        return new AchievedRpo(
                Optional.of(rpo),
                true,
                asOf,
                Optional.of(r.writtenAt()),
                Optional.of(lost),
                from,
                "the mirror was " + r.phases() + " when last heard at " + r.writtenAt() + ", last in sync at "
                        + asOf.get() + ": writes after that may be missing"
                        + (r.disks().stream().anyMatch(d -> d.phase().name().equals("SYNCING"))
                                ? "; a disk was re-copying in full, its replica may mix data of different moments"
                                : ""));
    }

    /**
     * The RPO of booting DR points (one per disk): their data is as of the oldest point's moment,
     * less the mirror's lag then.
     */
    public static AchievedRpo ofPoints(
            Collection<DrPoint> points, Optional<MirrorRecord> record, Optional<Instant> operatorLostAt, Instant now) {
        Instant asOf = points.stream()
                .map(p -> p.createdAt().minus(p.mirrorLag()))
                .min(Instant::compareTo)
                .orElseThrow();
        Instant lost;
        String from;
        if (operatorLostAt.isPresent()) {
            lost = record.map(r -> lostAt(r, operatorLostAt, now)).orElse(operatorLostAt.get());
            from = lost.equals(operatorLostAt.get()) ? "operator" : "heartbeat";
        } else if (record.isPresent()) {
            lost = lostAt(record.get(), Optional.empty(), now);
            from = "heartbeat";
        } else {
            lost = now;
            from = "now";
        }
        boolean exact = operatorLostAt.isPresent() && points.stream().allMatch(DrPoint::mirrorInSync);
        return new AchievedRpo(
                Optional.of(positive(Duration.between(asOf, lost))),
                !exact,
                Optional.of(asOf),
                record.map(MirrorRecord::writtenAt),
                Optional.of(lost),
                from,
                "booted on DR point(s) of " + asOf + ": every write after it is left behind by choice"
                        + (points.stream().allMatch(DrPoint::mirrorInSync)
                                ? ""
                                : "; a point was taken while the mirror lagged"));
    }

    /**
     * The primary's loss: the operator's moment (but not before the record, which shows the primary
     * alive then), else when the record that never came was due — one
     * heartbeat after the last — plus one more heartbeat for a writer running late on a loaded host
     * (never after now). Later than the true loss, so the RPO built on it is never too small.
     */
    static Instant lostAt(MirrorRecord r, Optional<Instant> operatorLostAt, Instant now) {
        if (operatorLostAt.isPresent()) {
            // a record written after the operator's moment shows the primary alive (and writing) then
            return operatorLostAt.get().isBefore(r.writtenAt()) ? r.writtenAt() : operatorLostAt.get();
        }
        Instant next = r.writtenAt().plus(r.heartbeat()).plus(r.heartbeat());
        return next.isAfter(now) ? now : next;
    }

    private static Duration positive(Duration d) {
        return d.isNegative() ? Duration.ZERO : d;
    }

    private static String human(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }

    /** The RPO for output: {@code 0.0s}, {@code <=12.3s}, or {@code unknown}. */
    public String label() {
        return rpo.map(d ->
                        (upperBound ? "<=" : "") + String.format(java.util.Locale.ROOT, "%.1fs", d.toMillis() / 1000.0))
                .orElse("unknown");
    }
}
