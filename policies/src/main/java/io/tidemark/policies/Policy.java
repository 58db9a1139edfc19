package io.tidemark.policies;

import io.tidemark.core.event.ConsistencyPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * One snapshot policy: which VMs, when, how consistent, and what recovery objectives it promises.
 *
 * <p>The record checks only that its parts are present; the rules of the language (name syntax,
 * minimum interval, jitter below the interval, ...) are enforced by {@link PolicyParser}, so tests
 * and embedded callers may build policies the language would refuse, such as a one-second interval.
 *
 * @param name unique among the loaded policies; {@code [a-z0-9-]+} when parsed
 * @param vms which VMs the policy covers
 * @param schedule when it fires
 * @param consistency the consistency each snapshot must achieve
 * @param rpo the recovery point objective: the oldest the newest restore point may be
 * @param rto the recovery time objective, if one is promised
 * @param fullEvery how often to force a full read of every disk, if at all
 * @param targets names of the replication targets every restore point must reach, in file order
 * @param retention the retention rule per location ({@code local} or a target name); absent = keep all
 * @param source the file the policy was read from, for messages; empty for policies built in code
 * @param preDeployApps names of the applications whose pre-deploy hooks snapshot this policy's VMs
 *     ({@code triggers.pre-deploy.apps}), in file order; empty when no hook triggers the policy
 * @param targetRpos the RPO of each target that has its own ({@code targets: [{name, rpo}]});
 *     the others are held to {@link #rpo}
 * @param qos limits on what a snapshot job of this policy may consume
 * @param budgets the capacity budget of each VM at each location that has one ({@code budget:}):
 *     the most bytes the VM's restore points there may occupy, counted as {@code
 *     io.tidemark.replicator.Budgets} does; retention removes the oldest prunable points beyond it
 * @param tiers the storage tiers ({@code tiers:}): per location, how long points stay in which
 *     storage class; {@link Tiers#NONE} when not given (docs/adr/0020-storage-tiers.md)
 * @param continuous {@code mode: continuous} with its DR export (ADR 19): the VMs are mirrored to
 *     the DR site, and the scheduler takes no snapshot of them; empty for {@code mode: scheduled}
 */
public record Policy(
        String name,
        VmSelector vms,
        Schedule schedule,
        ConsistencyPolicy consistency,
        Duration rpo,
        Optional<Duration> rto,
        Optional<Duration> fullEvery,
        List<String> targets,
        Map<String, Retention> retention,
        Optional<Path> source,
        List<String> preDeployApps,
        Map<String, Duration> targetRpos,
        Qos qos,
        Map<String, Long> budgets,
        Tiers tiers,
        Optional<Continuous> continuous) {

    public Policy {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(vms, "vms");
        Objects.requireNonNull(schedule, "schedule");
        Objects.requireNonNull(consistency, "consistency");
        Objects.requireNonNull(rpo, "rpo");
        Objects.requireNonNull(rto, "rto");
        Objects.requireNonNull(fullEvery, "fullEvery");
        targets = List.copyOf(targets);
        retention = Map.copyOf(retention);
        Objects.requireNonNull(source, "source");
        preDeployApps = List.copyOf(preDeployApps);
        targetRpos = Map.copyOf(targetRpos);
        Objects.requireNonNull(qos, "qos");
        budgets = Map.copyOf(budgets);
        Objects.requireNonNull(tiers, "tiers");
        Objects.requireNonNull(continuous, "continuous");
    }

    /**
     * Continuous protection (ADR 19, {@code mode: continuous}): every disk of each selected VM is
     * mirrored by QEMU's active mirror to an NBD export at the DR site; {@link #rpo} is the largest
     * mirror lag tolerated before {@code RpoViolated} (location {@code dr-mirror}).
     *
     * @param drNbd {@code dr.nbd}: the NBD URI of each disk's replica, with {@code {vm}} and {@code
     *     {disk}} placeholders, such as {@code nbd://dr-host:10809/{vm}-{disk}}
     * @param points {@code dr.qmp} and {@code dr.points}: where the policy's {@code schedule} takes
     *     restore points of the replicas at the DR site; empty: the mirrors keep no history
     * @param tls {@code dr.tls}: TLS on the NBD link; empty: plain NBD
     */
    public record Continuous(String drNbd, Optional<DrPoints> points, Optional<DrTls> tls) {
        public Continuous {
            Objects.requireNonNull(drNbd, "drNbd");
            Objects.requireNonNull(points, "points");
            Objects.requireNonNull(tls, "tls");
        }

        public Continuous(String drNbd, Optional<DrPoints> points) {
            this(drNbd, points, Optional.empty());
        }

        /** Mirrors only: no DR points, no TLS. */
        public Continuous(String drNbd) {
            this(drNbd, Optional.empty(), Optional.empty());
        }
    }

    /**
     * TLS on the NBD link to the DR site ({@code dr.tls}, ADR 19): QEMU's NBD TLS with x509
     * credentials. Secrets are never in the policy: the key is a file on the VM's host.
     *
     * @param dir {@code dr.tls.dir}: absolute directory on the VM's host holding {@code
     *     ca-cert.pem}, {@code client-cert.pem} and {@code client-key.pem}
     * @param hostname {@code dr.tls.hostname}: the name the DR daemon's certificate must carry;
     *     empty: the host of {@code dr.nbd}
     */
    public record DrTls(String dir, Optional<String> hostname) {
        public DrTls {
            Objects.requireNonNull(dir, "dir");
            Objects.requireNonNull(hostname, "hostname");
        }
    }

    /**
     * Restore points of the replicas taken at the DR site on the policy's {@code schedule} (ADR 19).
     * Templates take {@code {vm}} and {@code {disk}}.
     *
     * @param qmp {@code dr.qmp}: the DR storage daemon's QMP Unix socket of each disk's replica, as
     *     seen from the VM's host, such as {@code /run/dr/{vm}-{disk}.qmp}
     * @param node {@code dr.node}: the replica's node name in that daemon; empty: the daemon's only
     *     block export's node
     * @param dir {@code dr.points}: the directory of the VM's points (a sub-directory per disk unless
     *     it names {@code {disk}}), reachable at the same path by the daemon and the VM's host
     * @param keep {@code dr.keep}: which points to keep; {@link Retention#keepAll()} when absent
     */
    public record DrPoints(String qmp, Optional<String> node, String dir, Retention keep) {
        public DrPoints {
            Objects.requireNonNull(qmp, "qmp");
            Objects.requireNonNull(node, "node");
            Objects.requireNonNull(dir, "dir");
            Objects.requireNonNull(keep, "keep");
        }

        /** The DR daemon's QMP socket of the VM's disk ({@code unix:} removed). */
        public Path qmpOf(String vm, String disk) {
            String q = fill(qmp, vm, disk);
            return Path.of(q.startsWith("unix:") ? q.substring("unix:".length()) : q);
        }

        /** The replica's node name of the VM's disk in its daemon, if configured. */
        public Optional<String> nodeOf(String vm, String disk) {
            return node.map(n -> fill(n, vm, disk));
        }

        /** The directory of the VM's disk's points: {@code dir} filled in, plus {@code /<disk>} unless it names {@code {disk}}. */
        public Path dirOf(String vm, String disk) {
            Path d = Path.of(fill(dir, vm, disk));
            return dir.contains("{disk}") ? d : d.resolve(disk);
        }

        private static String fill(String template, String vm, String disk) {
            return template.replace("{vm}", vm).replace("{disk}", disk);
        }
    }

    /** A scheduled policy (no continuous protection) without storage tiers. */
    public Policy(
            String name,
            VmSelector vms,
            Schedule schedule,
            ConsistencyPolicy consistency,
            Duration rpo,
            Optional<Duration> rto,
            Optional<Duration> fullEvery,
            List<String> targets,
            Map<String, Retention> retention,
            Optional<Path> source,
            List<String> preDeployApps,
            Map<String, Duration> targetRpos,
            Qos qos,
            Map<String, Long> budgets) {
        this(
                name,
                vms,
                schedule,
                consistency,
                rpo,
                rto,
                fullEvery,
                targets,
                retention,
                source,
                preDeployApps,
                targetRpos,
                qos,
                budgets,
                Tiers.NONE,
                Optional.empty());
    }

    /**
     * Quality-of-service limits of a policy's snapshot jobs; {@link #NONE} limits nothing.
     *
     * @param readBytesPerSecond {@code read-bandwidth}: the most bytes a job reads from the disks per second
     * @param readIopsPerSecond {@code read-iops}: the most read requests a job sends to the disks per second
     */
    public record Qos(OptionalLong readBytesPerSecond, OptionalLong readIopsPerSecond) {
        public static final Qos NONE = new Qos(OptionalLong.empty(), OptionalLong.empty());

        public Qos {
            Objects.requireNonNull(readBytesPerSecond, "readBytesPerSecond");
            Objects.requireNonNull(readIopsPerSecond, "readIopsPerSecond");
        }

        /** A bandwidth limit alone. */
        public Qos(OptionalLong readBytesPerSecond) {
            this(readBytesPerSecond, OptionalLong.empty());
        }
    }

    /** The capacity budget of each VM at {@code location}, if the policy sets one. */
    public OptionalLong budgetAt(String location) {
        Long b = budgets.get(location);
        return b == null ? OptionalLong.empty() : OptionalLong.of(b);
    }

    /** This policy with the storage tiers {@code tiers} instead of its own. */
    public Policy withTiers(Tiers tiers) {
        return copy(preDeployApps, targetRpos, budgets, tiers, continuous);
    }

    /** True for {@code mode: continuous}: mirrored to the DR site, never scheduled for snapshots. */
    public boolean isContinuous() {
        return continuous.isPresent();
    }

    /** This policy in {@code mode: continuous} with {@code protection}. */
    public Policy withContinuous(Continuous protection) {
        return copy(preDeployApps, targetRpos, budgets, tiers, Optional.of(protection));
    }

    /** This policy with the capacity budgets {@code byLocation} instead of its own. */
    public Policy withBudgets(Map<String, Long> byLocation) {
        return copy(preDeployApps, targetRpos, byLocation, tiers, continuous);
    }

    /** A policy that no pre-deploy hook triggers. */
    public Policy(
            String name,
            VmSelector vms,
            Schedule schedule,
            ConsistencyPolicy consistency,
            Duration rpo,
            Optional<Duration> rto,
            Optional<Duration> fullEvery,
            List<String> targets,
            Map<String, Retention> retention,
            Optional<Path> source) {
        this(
                name,
                vms,
                schedule,
                consistency,
                rpo,
                rto,
                fullEvery,
                targets,
                retention,
                source,
                List.of(),
                Map.of(),
                Qos.NONE,
                Map.of());
    }

    /**
     * A crash-consistent policy with no RTO, no forced full reads, no source file and no pre-deploy
     * trigger, for tests and embedded use.
     */
    public static Policy of(String name, VmSelector vms, Schedule schedule, Duration rpo, List<String> targets) {
        return new Policy(
                name,
                vms,
                schedule,
                ConsistencyPolicy.CRASH,
                rpo,
                Optional.empty(),
                Optional.empty(),
                targets,
                Map.of(),
                Optional.empty(),
                List.of(),
                Map.of(),
                Qos.NONE,
                Map.of());
    }

    /** This policy, triggered by the pre-deploy hooks of {@code apps} instead of its current ones. */
    public Policy withPreDeployApps(List<String> apps) {
        return copy(apps, targetRpos, budgets, tiers, continuous);
    }

    /** This policy with {@code rpo} at {@code target} instead of the policy-wide one. */
    public Policy withTargetRpo(String target, Duration targetRpo) {
        Map<String, Duration> rpos = new java.util.HashMap<>(targetRpos);
        rpos.put(target, targetRpo);
        return copy(preDeployApps, rpos, budgets, tiers, continuous);
    }

    /** This policy with the components the withers change replaced, every other one kept. */
    private Policy copy(
            List<String> preDeployApps,
            Map<String, Duration> targetRpos,
            Map<String, Long> budgets,
            Tiers tiers,
            Optional<Continuous> continuous) {
        return new Policy(
                name,
                vms,
                schedule,
                consistency,
                rpo,
                rto,
                fullEvery,
                targets,
                retention,
                source,
                preDeployApps,
                targetRpos,
                qos,
                budgets,
                tiers,
                continuous);
    }

    /**
     * The RPO promised at {@code location}: the target's own when it has one, else {@link #rpo}
     * (also for {@code local}).
     */
    public Duration rpoAt(String location) {
        return targetRpos.getOrDefault(location, rpo);
    }

    /** True when the pre-deploy hook of {@code app} snapshots this policy's VMs. */
    public boolean triggeredBeforeDeployOf(String app) {
        return preDeployApps.contains(app);
    }

    /** The retention rule of {@code location} ({@code local} or a target); keep-all when none is given. */
    public Retention retentionAt(String location) {
        return retention.getOrDefault(location, Retention.keepAll());
    }
}
