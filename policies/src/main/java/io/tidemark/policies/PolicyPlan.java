package io.tidemark.policies;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a policy will do once loaded, computed without running anything: its next firings, whether its
 * schedule can meet its RPO, and how many restore points each location keeps after some days.
 *
 * <p>RPO check: the longest gap between two firings, plus the jitter, plus the expected backup
 * duration, plus (when a change rate and bandwidth are given) the time to ship the data changed in
 * that gap, must not exceed the RPO.
 *
 * @param policy the policy planned
 * @param nextFireTimes the next firings (UTC), as the scheduler would compute them
 * @param longestGap the longest time between two firings ({@code interval} for an interval schedule)
 * @param problems why the RPO cannot be met; empty when feasible
 * @param retention per location ({@code local}, then targets, then other locations named by {@code
 *     retention}), what is kept at the end of the simulated days
 * @param tiers per tier of the policy, in file order, the bytes it holds and receives each month;
 *     empty without tiers or without a change rate
 */
public record PolicyPlan(
        Policy policy,
        List<Instant> nextFireTimes,
        Duration longestGap,
        List<String> problems,
        List<LocationOutlook> retention,
        List<TierOutlook> tiers) {

    /** Hours in an average month (365.25 d / 12). */
    static final double HOURS_PER_MONTH = 730.5;

    public PolicyPlan {
        Objects.requireNonNull(policy, "policy");
        nextFireTimes = List.copyOf(nextFireTimes);
        Objects.requireNonNull(longestGap, "longestGap");
        problems = List.copyOf(problems);
        retention = List.copyOf(retention);
        tiers = List.copyOf(tiers);
    }

    /**
     * The steady-state estimate of one tier (docs/adr/0020-storage-tiers.md): every byte of a VM's
     * current image is referenced by its newest point, so it stays in the location's first tier
     * ({@code fullSize} there); data overwritten at age {@code a} stays referenced only by points
     * older than {@code a} and moves through the tiers with them. So a tier that covers ages {@code
     * [from, to)} holds the change rate times its keep, and every tier receives the change rate
     * times a month. An upper bound: a block changed twice in one interval counts once
     * in the change rate, and retention keeping fewer points keeps fewer old versions.
     *
     * @param location {@code local} or a target
     * @param tier the tier's name
     * @param storageClass the tier's storage class; empty = the location's own
     * @param storedBytes the bytes one VM keeps in the tier (billed as byte-months each month)
     * @param inBytesPerMonth the bytes that enter the tier each month: written, in a location's first
     *     tier; moved by lifecycle transitions, in the others
     */
    public record TierOutlook(
            String location, String tier, Optional<String> storageClass, long storedBytes, long inBytesPerMonth) {}

    /** True when the schedule can meet the RPO. */
    public boolean feasible() {
        return problems.isEmpty();
    }

    /**
     * What one location keeps at the end of the simulation.
     *
     * @param location {@code local} or a target name
     * @param rule the retention rule applied
     * @param created restore points created during the simulation
     * @param kept restore points the rule keeps at its end
     * @param oldestKept the oldest of those, if any
     */
    public record LocationOutlook(
            String location, Retention rule, int created, int kept, Optional<Instant> oldestKept) {}

    /**
     * How to plan.
     *
     * @param now when the policies are assumed to be scheduled
     * @param fireCount how many next firings to list
     * @param days how long to simulate retention
     * @param backupTime the expected duration of one backup
     * @param changeRateMbPerHour data changed per hour, in MB; empty to skip the shipping check
     * @param bandwidthMbPerSecond bandwidth to the targets, in MB/s; required with a change rate
     */
    public record Options(
            Instant now,
            int fireCount,
            Duration days,
            Duration backupTime,
            OptionalDouble changeRateMbPerHour,
            OptionalDouble bandwidthMbPerSecond,
            OptionalDouble fullSizeMb) {

        /** Options without a full size (tier estimates then count changed data only). */
        public Options(
                Instant now,
                int fireCount,
                Duration days,
                Duration backupTime,
                OptionalDouble changeRateMbPerHour,
                OptionalDouble bandwidthMbPerSecond) {
            this(now, fireCount, days, backupTime, changeRateMbPerHour, bandwidthMbPerSecond, OptionalDouble.empty());
        }

        public Options {
            Objects.requireNonNull(fullSizeMb, "fullSizeMb");
            if (fullSizeMb.isPresent() && fullSizeMb.getAsDouble() < 0) {
                throw new IllegalArgumentException("full size must not be negative");
            }
            Objects.requireNonNull(now, "now");
            Objects.requireNonNull(days, "days");
            Objects.requireNonNull(backupTime, "backupTime");
            if (fireCount < 0 || days.isNegative() || backupTime.isNegative()) {
                throw new IllegalArgumentException("fire count, days and backup time must not be negative");
            }
            if (changeRateMbPerHour.isPresent() != bandwidthMbPerSecond.isPresent()) {
                throw new IllegalArgumentException("give both a change rate and a bandwidth, or neither");
            }
            if (bandwidthMbPerSecond.isPresent() && bandwidthMbPerSecond.getAsDouble() <= 0) {
                throw new IllegalArgumentException("bandwidth must be positive");
            }
            if (changeRateMbPerHour.isPresent() && changeRateMbPerHour.getAsDouble() < 0) {
                throw new IllegalArgumentException("change rate must not be negative");
            }
        }

        /** The next 5 firings, 30 days of retention, 1 minute per backup, no shipping check. */
        public static Options defaults(Instant now) {
            return new Options(
                    now, 5, Duration.ofDays(30), Duration.ofMinutes(1), OptionalDouble.empty(), OptionalDouble.empty());
        }
    }

    /** The plan of every policy of {@code set}, in name order. */
    public static List<PolicyPlan> of(PolicySet set, Options options) {
        return set.policies().stream().map(p -> of(p, options)).toList();
    }

    /** The plan of {@code policy}. */
    public static PolicyPlan of(Policy policy, Options options) {
        Instant end = options.now().plus(options.days());
        List<Instant> simulated = FireTimes.until(policy, options.now(), end);
        List<Instant> forGap = simulated.size() >= 2 ? simulated : FireTimes.next(policy, options.now(), 2);
        Duration gap = longestGap(policy, forGap);
        return new PolicyPlan(
                policy,
                FireTimes.next(policy, options.now(), options.fireCount()),
                gap,
                // a continuous policy's RPO is its mirror's lag, not a schedule's gap (ADR 19)
                policy.isContinuous() ? List.of() : rpoProblems(policy, gap, options),
                retention(policy, simulated),
                tiers(policy, options));
    }

    private static List<TierOutlook> tiers(Policy policy, Options options) {
        if (options.changeRateMbPerHour().isEmpty()) {
            return List.of();
        }
        double bytesPerHour = options.changeRateMbPerHour().getAsDouble() * 1_000_000;
        long full = (long) (options.fullSizeMb().orElse(0) * 1_000_000);
        List<TierOutlook> out = new ArrayList<>();
        for (Tier t : policy.tiers().all()) {
            boolean first = policy.tiers().at(t.location()).get(0).equals(t);
            double hours = t.keep().toSeconds() / 3600.0;
            out.add(new TierOutlook(
                    t.location(), t.name(), t.storageClass(), (long) (bytesPerHour * hours) + (first ? full : 0), (long)
                            (bytesPerHour * HOURS_PER_MONTH)));
        }
        return out;
    }

    private static Duration longestGap(Policy policy, List<Instant> fires) {
        if (policy.schedule() instanceof Schedule.Interval interval) {
            return interval.every();
        }
        Duration longest = Duration.ZERO;
        for (int i = 1; i < fires.size(); i++) {
            Duration d = Duration.between(fires.get(i - 1), fires.get(i));
            if (d.compareTo(longest) > 0) {
                longest = d;
            }
        }
        return longest;
    }

    private static List<String> rpoProblems(Policy policy, Duration gap, Options options) {
        Duration jitter = policy.schedule().jitter();
        Duration local = gap.plus(jitter).plus(options.backupTime());
        Duration total = local;
        StringBuilder why =
                new StringBuilder(policy.schedule() instanceof Schedule.Interval ? "interval " : "cron gap up to ");
        why.append(DurationSyntax.format(gap));
        if (!jitter.isZero()) {
            why.append(" + jitter ").append(DurationSyntax.format(jitter));
        }
        why.append(" + ").append(DurationSyntax.format(options.backupTime())).append(" backup");
        List<String> problems = new ArrayList<>();
        if (options.changeRateMbPerHour().isPresent()) {
            double changedMb = options.changeRateMbPerHour().getAsDouble() * gap.toMillis() / 3_600_000.0;
            double bandwidth = options.bandwidthMbPerSecond().getAsDouble();
            Duration ship = Duration.ofSeconds((long) Math.ceil(changedMb / bandwidth));
            total = total.plus(ship);
            why.append(String.format(
                    " + %s to ship %s MB at %s MB/s",
                    DurationSyntax.format(ship), number(changedMb), number(bandwidth)));
            if (ship.compareTo(gap) > 0) {
                problems.add(String.format(
                        "shipping %s MB at %s MB/s takes %s, longer than the %s between firings: the backlog grows",
                        number(changedMb), number(bandwidth), DurationSyntax.format(ship), DurationSyntax.format(gap)));
            }
        }
        if (policy.targetRpos().isEmpty()) { // one RPO everywhere
            if (total.compareTo(policy.rpo()) > 0) {
                problems.add(0, why + " exceeds rpo " + DurationSyntax.format(policy.rpo()));
            }
            return problems;
        }
        List<String> exceeded = new ArrayList<>();
        if (local.compareTo(policy.rpo()) > 0) {
            exceeded.add("rpo " + DurationSyntax.format(policy.rpo()) + " at local");
        }
        for (String target : policy.targets()) {
            Duration rpo = policy.rpoAt(target);
            if (total.compareTo(rpo) > 0) {
                exceeded.add("rpo " + DurationSyntax.format(rpo) + " at " + target);
            }
        }
        if (!exceeded.isEmpty()) {
            problems.add(0, why + " exceeds " + String.join(", ", exceeded));
        }
        return problems;
    }

    private static String number(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : String.format("%.1f", d);
    }

    private static List<LocationOutlook> retention(Policy policy, List<Instant> points) {
        List<String> locations = new ArrayList<>();
        locations.add("local");
        policy.targets().stream().filter(t -> !locations.contains(t)).forEach(locations::add);
        new TreeSet<>(policy.retention().keySet())
                .stream().filter(l -> !locations.contains(l)).forEach(locations::add);
        List<LocationOutlook> outlooks = new ArrayList<>();
        for (String location : locations) {
            Retention rule = policy.retentionAt(location);
            Set<Instant> kept = rule.keep(points);
            outlooks.add(new LocationOutlook(
                    location, rule, points.size(), kept.size(), kept.stream().min(Instant::compareTo)));
        }
        return outlooks;
    }
}
