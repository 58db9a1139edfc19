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
 */
public record PolicyPlan(
        Policy policy,
        List<Instant> nextFireTimes,
        Duration longestGap,
        List<String> problems,
        List<LocationOutlook> retention) {

    public PolicyPlan {
        Objects.requireNonNull(policy, "policy");
        nextFireTimes = List.copyOf(nextFireTimes);
        Objects.requireNonNull(longestGap, "longestGap");
        problems = List.copyOf(problems);
        retention = List.copyOf(retention);
    }

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
            OptionalDouble bandwidthMbPerSecond) {

        public Options {
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
                retention(policy, simulated));
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
