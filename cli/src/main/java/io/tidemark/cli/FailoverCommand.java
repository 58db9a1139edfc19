package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.recovery.ContinuousFailover;
import io.tidemark.recovery.DrHypervisor;
import io.tidemark.recovery.DrSite;
import io.tidemark.recovery.Failover;
import io.tidemark.repository.Repository;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "failover",
        mixinStandardHelpOptions = true,
        description = {
            "Bring up the VMs of a DR plan at the DR site from replicated restore points.",
            "It picks each VM's newest restore point at the plan's source target (VMs tied by",
            "consistent-with come from the same firing), restores the disks under the plan's work-dir (in",
            "parallel within a group), starts each VM on the plan's dr-host (libvirt: a domain defined from",
            "the point's captured definition, adapted to the host; QEMU: daemonized; KVM where the host can",
            "run it, else TCG, which it reports), and waits until every VM of a group runs before starting",
            "the next group. What was adapted is printed (adapted: …). Prints per VM the",
            "restore point, the achieved RPO (how old its data is) and RTO (time from the start of the",
            "command until the VM ran; with --json also from its JVM's start, rtoFromCommandStartSeconds).",
            "Re-running it reports VMs that already run and starts the rest.",
            "",
            "A continuously protected VM (its plan entry has continuous: disks with the DR replicas) boots on",
            "its raw DR replica by default (\"now\": the DR daemon's export is deleted first, so no mirrored",
            "write lands after the cut), or with --at TIME / --point ID on its DR points. Its achieved RPO comes",
            "from the mirror state record the primary's engine wrote at the plan's source (ADR 22): 0 when the",
            "mirror was in sync when last heard, else an upper bound (shown as <=); unknown without a record.",
            "",
            "Example:  tidemark dr failover --config /etc/tidemark/engine.yaml --plan dr-east.yaml --dry-run",
            "          tidemark dr failover --config /etc/tidemark/engine.yaml --plan dr-east.yaml",
            "          tidemark dr failover --config engine.yaml --plan dr-east.yaml --at 2026-12-07T03:10:00Z",
            "",
            "Runbook: docs/runbooks/dr-failover.md",
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:every VM of the plan runs (dry run: the plan can be carried out)",
            "1:the plan is invalid (the message names file, line, column and key)",
            "2:a VM has no restore point, a disk cannot be written, QEMU refused to start, or (dry run) a check"
                    + " failed",
            "3:the target or a VM did not answer in time; re-run the same command"
        })
final class FailoverCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(names = "--plan", required = true, description = "the DR plan (YAML; see the runbook)")
    Path planFile;

    @Option(
            names = "--dry-run",
            description = "check the plan, the target, the points, the disks' paths and QEMU;"
                    + " write nothing, start nothing")
    boolean dryRun;

    @Option(names = "--parallel", defaultValue = "8", description = "chunks fetched in parallel per disk (default: 8)")
    int parallel;

    @Option(names = "--json", description = "print a JSON summary instead of text; no progress bar")
    boolean json;

    @Option(
            names = "--at",
            paramLabel = "TIME",
            description = "continuous VMs: boot each disk's newest DR point not after TIME (ISO-8601, e.g."
                    + " 2026-12-07T03:10:00Z) instead of the replica")
    Instant at;

    @Option(
            names = "--point",
            paramLabel = "ID",
            description = "continuous VMs: boot the DR point ID (p-<millis>) of each disk instead of the replica")
    String point;

    @Option(
            names = "--primary-lost-at",
            paramLabel = "TIME",
            description = "continuous VMs: when the primary was lost (ISO-8601), for the achieved RPO; default: the"
                    + " mirror state record's last heartbeat + two intervals")
    Instant primaryLostAt;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException {
        long t0 = System.nanoTime();
        Instant started = clock.instant();
        if (at != null && point != null) {
            throw new picocli.CommandLine.ParameterException(
                    new picocli.CommandLine(this), "give --at or --point, not both");
        }
        RecoveryPlan plan = new RecoveryPlanParser().parseFile(planFile);
        RecoveryPlan fromPoints = withoutContinuous(plan);
        DrSite site = DrSite.of(plan);
        try (ObjectTarget target = DrSources.open(engine, plan);
                DrHypervisor host = DrHypervisor.of(plan, site)) {
            Failover failover = null;
            Map<String, Manifest> points = Map.of();
            if (!fromPoints.vms().isEmpty()) {
                Repository repo = Repository.open(target, engine.passphrases(engine.engineConfig()));
                failover = new Failover(repo, site, host, parallel, clock, ProgressBars.onTerminal(json));
                points = failover.points(fromPoints);
            }
            ContinuousFailover continuous = new ContinuousFailover(Optional.of(target), site, host, clock);
            if (dryRun) {
                Failover.DryRun dry = failover != null
                        ? failover.dryRun(fromPoints, points)
                        : new Failover.DryRun(List.of(), List.of());
                List<String> problems = new java.util.ArrayList<>(dry.problems());
                ArrayNode mirroredJson = Json.mapper().createArrayNode();
                List<String> lines = continuousDryRun(plan, target, host, site, problems, mirroredJson);
                dry = new Failover.DryRun(
                        dry.vms(), problems.stream().distinct().toList());
                printDryRun(plan, target, dry, started, mirroredJson, lines);
                return dry.ok() ? 0 : Main.EXIT_PERMANENT;
            }
            Instant runStarted = clock.instant();
            List<Failover.VmResult> results = new java.util.ArrayList<>();
            List<ContinuousFailover.VmResult> mirrored = new java.util.ArrayList<>();
            for (RecoveryPlan.Group g : plan.groups()) {
                // a group's continuous VMs (seconds: no restore), then its VMs from points
                mirrored.addAll(continuous.run(g, choice(), Optional.ofNullable(primaryLostAt), t0, started));
                RecoveryPlan one = only(fromPoints, g.name());
                if (failover != null && !one.vms().isEmpty()) {
                    results.addAll(failover.run(one, points, t0));
                }
            }
            if ((at != null || point != null) && plan.vms().stream().noneMatch(RecoveryPlan.Vm::isContinuous)) {
                System.err.println("note: --at and --point choose DR points of continuous VMs; this plan has none");
            }
            print(plan, results, mirrored, new Starts(jvmStarted(), started, runStarted));
            return 0;
        }
    }

    /** What a continuous VM comes back with, from the options. */
    ContinuousFailover.Choice choice() {
        if (point != null) {
            return new ContinuousFailover.Choice.Point(point);
        }
        if (at != null) {
            return new ContinuousFailover.Choice.At(at);
        }
        return new ContinuousFailover.Choice.Now();
    }

    /** {@code plan} without its continuous VMs (and without groups left empty). */
    static RecoveryPlan withoutContinuous(RecoveryPlan plan) {
        List<RecoveryPlan.Group> groups = plan.groups().stream()
                .map(g -> new RecoveryPlan.Group(
                        g.name(),
                        g.vms().stream().filter(v -> !v.isContinuous()).toList()))
                .filter(g -> !g.vms().isEmpty())
                .toList();
        return new RecoveryPlan(
                plan.file(), plan.site(), plan.source(), plan.workDir(), plan.homeDir(), groups, plan.drHost());
    }

    /** {@code plan} with only its group {@code group}. */
    private static RecoveryPlan only(RecoveryPlan plan, String group) {
        return new RecoveryPlan(
                plan.file(),
                plan.site(),
                plan.source(),
                plan.workDir(),
                plan.homeDir(),
                plan.groups().stream().filter(g -> g.name().equals(group)).toList(),
                plan.drHost());
    }

    /** Checks the continuous VMs' replicas and records; returns the lines to print. */
    private List<String> continuousDryRun(
            RecoveryPlan plan,
            ObjectTarget target,
            DrHypervisor host,
            DrSite site,
            List<String> problems,
            ArrayNode json) {
        List<String> lines = new java.util.ArrayList<>();
        for (RecoveryPlan.Vm vm : plan.vms()) {
            if (!vm.isContinuous()) {
                continue;
            }
            if (host != site) {
                problems.add(vm.name() + " is continuously protected: its failover runs on a QEMU DR host only"
                        + " (dr-host.hypervisor: qmp), not on " + host.describe());
            } else if (!io.tidemark.recovery.DrChecks.onPath(DrSite.QEMU)) {
                problems.add(DrSite.QEMU + " is not on PATH (install qemu-system-x86)");
            }
            if (site.diskFormat() == RecoveryPlan.DiskFormat.RBD) {
                problems.add(vm.name() + " is continuously protected: dr-host.disks.format must be raw or qcow2");
            }
            io.tidemark.recovery.DrChecks.writable(site.workDir()).ifPresent(problems::add);
            Optional<io.tidemark.workers.mirror.MirrorRecord> record =
                    io.tidemark.workers.mirror.MirrorRecord.newest(target, vm.name());
            ObjectNode o = json.addObject().put("vm", vm.name()).put("recordFound", record.isPresent());
            record.ifPresent(r -> {
                o.put("lastHeardAt", r.writtenAt().toString());
                o.put("inSync", r.inSync());
                o.put("phases", r.phases());
                r.dataAsOf().ifPresent(t -> o.put("dataAsOf", t.toString()));
            });
            ObjectNode pointCounts = o.putObject("drPoints");
            lines.add("  " + vm.name() + " (continuous): "
                    + record.map(r -> "mirror " + r.phases() + " when last heard at " + r.writtenAt())
                            .orElse("no mirror state record at " + target.describe()
                                    + ": the achieved RPO would be unknown"));
            vm.continuous().orElseThrow().disks().forEach((disk, d) -> {
                if (!java.nio.file.Files.isRegularFile(d.replica())) {
                    problems.add("the DR replica " + d.replica() + " of " + vm.name() + "/" + disk + " does not exist");
                }
                d.points().ifPresent(dir -> {
                    int n = new io.tidemark.workers.mirror.DrPoints(null, null, dir, clock)
                            .list()
                            .size();
                    pointCounts.put(disk, n);
                    lines.add("    " + disk + ": " + n + " DR point(s) in " + dir);
                });
            });
        }
        return lines;
    }

    /**
     * When this process's JVM started (as the JVM tells), when the command itself began (after JVM
     * start and argument parsing), and when the failover began restoring (after the plan, the
     * engine config, the target, the repository and the points were read).
     */
    record Starts(Instant jvm, Instant command, Instant run) {}

    /** When this JVM started: the operator's command began no later. */
    static Instant jvmStarted() {
        return Instant.ofEpochMilli(
                java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime());
    }

    /** A failover's JSON summary; each started VM's RTO also from the JVM's start. */
    static ObjectNode summary(RecoveryPlan plan, List<Failover.VmResult> results, Starts starts) {
        ObjectNode out = Json.mapper().createObjectNode();
        out.put("site", plan.site());
        out.put("source", plan.source());
        out.put("jvmStartedAt", starts.jvm().toString());
        out.put("commandStartedAt", starts.command().toString());
        out.put("restoreStartedAt", starts.run().toString());
        ArrayNode vms = out.putArray("vms");
        results.forEach(r -> {
            ObjectNode o = vms.addObject();
            toJson(r, o);
            r.timing().ifPresent(t -> putRtoFromCommandStart(o, starts, t.runningAt()));
        });
        return out;
    }

    /** A failover's JSON summary with its continuous VMs (after the others). */
    static ObjectNode summary(
            RecoveryPlan plan,
            List<Failover.VmResult> results,
            List<ContinuousFailover.VmResult> mirrored,
            Starts starts) {
        ObjectNode out = summary(plan, results, starts);
        ArrayNode vms = (ArrayNode) out.get("vms");
        mirrored.forEach(r -> {
            ObjectNode o = vms.addObject();
            toJson(r, o);
            r.timing().ifPresent(t -> putRtoFromCommandStart(o, starts, t.runningAt()));
        });
        return out;
    }

    /** The RTO as the operator lives it: from the JVM's start until the VM ran. */
    private static void putRtoFromCommandStart(ObjectNode o, Starts starts, Instant runningAt) {
        o.put(
                "rtoFromCommandStartSeconds",
                Duration.between(starts.jvm(), runningAt).toMillis() / 1000.0);
    }

    /** One continuous VM of a failover's JSON summary. */
    static void toJson(ContinuousFailover.VmResult r, ObjectNode o) {
        o.put("vm", r.vm());
        o.put("group", r.group());
        o.put("state", r.state().label());
        o.put("continuous", true);
        o.put("source", r.source());
        ObjectNode pts = o.putObject("pointByDisk");
        r.pointByDisk().forEach(pts::put);
        r.rpo().ifPresent(rpo -> {
            if (rpo.rpo().isPresent()) {
                o.put("rpoSeconds", rpo.rpo().get().toMillis() / 1000.0);
            } else {
                o.putNull("rpoSeconds");
            }
            o.put("rpoKnown", rpo.rpo().isPresent());
            o.put("rpoUpperBound", rpo.upperBound());
            rpo.dataAsOf().ifPresent(t -> o.put("dataAsOf", t.toString()));
            rpo.lastHeardAt().ifPresent(t -> o.put("primaryLastHeardAt", t.toString()));
            rpo.primaryLostAt().ifPresent(t -> o.put("primaryLostAt", t.toString()));
            o.put("primaryLostAtFrom", rpo.lostAtFrom());
            o.put("rpoNote", rpo.note());
        });
        r.timing().ifPresent(t -> {
            o.put("rtoSeconds", t.rto().toMillis() / 1000.0);
            o.put("launchedAt", t.launchedAt().toString());
            o.put("runningAt", t.runningAt().toString());
        });
        ArrayNode disks = o.putArray("disks");
        r.disks().forEach(d -> disks.add(d.toString()));
        r.started().ifPresent(st -> o.put("accelerator", st.accelerator()));
        ArrayNode notes = o.putArray("notes");
        r.notes().forEach(notes::add);
    }

    private void print(
            RecoveryPlan plan,
            List<Failover.VmResult> results,
            List<ContinuousFailover.VmResult> mirrored,
            Starts starts)
            throws IOException {
        if (json) {
            ObjectNode out = summary(plan, results, mirrored, starts);
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            return;
        }
        print(plan, results);
        for (ContinuousFailover.VmResult r : mirrored) {
            System.out.println(line(r));
            r.rpo().ifPresent(rpo -> {
                System.out.printf(
                        "%-20s data as of %s; primary lost at %s (%s)%n",
                        "",
                        rpo.dataAsOf().map(Object::toString).orElse("unknown"),
                        rpo.primaryLostAt().map(Object::toString).orElse("unknown"),
                        rpo.lostAtFrom());
                System.out.printf("%-20s RPO %s: %s%n", "", rpo.label(), rpo.note());
            });
            r.started()
                    .ifPresent(st -> System.out.printf(
                            "%-20s runs under %s%n", "", st.accelerator().toUpperCase(java.util.Locale.ROOT)));
            r.notes().forEach(n -> System.out.printf("%-20s %s%n", "", n));
        }
    }

    /** The table row of a continuous VM: the replica or its points instead of a restore point. */
    static String line(ContinuousFailover.VmResult r) {
        String from = r.source().equals("dr-replica")
                ? "DR replica (now)"
                : String.join(",", new java.util.LinkedHashSet<>(r.pointByDisk().values()));
        return String.format(
                "%-20s %-12s %-28s %-16s %10s %10s",
                r.vm(),
                r.group(),
                from,
                r.state().label(),
                r.rpo().map(io.tidemark.recovery.AchievedRpo::label).orElse("-"),
                r.timing().map(t -> seconds(t.rto())).orElse("-"));
    }

    private void print(RecoveryPlan plan, List<Failover.VmResult> results) {
        System.out.printf("failover of plan %s to site %s from target '%s'%n", plan.file(), plan.site(), plan.source());
        System.out.printf("%-20s %-12s %-28s %-16s %10s %10s%n", "VM", "GROUP", "RESTORE POINT", "STATE", "RPO", "RTO");
        for (Failover.VmResult r : results) {
            System.out.printf(
                    "%-20s %-12s %-28s %-16s %10s %10s%n",
                    r.vm(),
                    r.group(),
                    r.point().id(),
                    r.state().label(),
                    r.timing().map(t -> seconds(t.rpo())).orElse("-"),
                    r.timing().map(t -> seconds(t.rto())).orElse("-"));
            r.started().ifPresent(st -> {
                System.out.printf("%-20s runs under %s%n", "", st.accelerator().toUpperCase(java.util.Locale.ROOT));
                st.notes().forEach(n -> System.out.printf("%-20s adapted: %s%n", "", n));
            });
        }
    }

    /** One VM of a failover's JSON summary. */
    static void toJson(Failover.VmResult r, ObjectNode o) {
        o.put("vm", r.vm());
        o.put("group", r.group());
        o.put("state", r.state().label());
        o.put("restorePoint", r.point().id());
        o.put("capturedAt", r.point().capturedAt().toString());
        r.timing().ifPresent(t -> {
            o.put("rpoSeconds", t.rpo().toMillis() / 1000.0);
            o.put("rtoSeconds", t.rto().toMillis() / 1000.0);
            o.put("launchedAt", t.launchedAt().toString());
            o.put("runningAt", t.runningAt().toString());
        });
        ArrayNode disks = o.putArray("disks");
        r.disks().forEach(d -> disks.add(d.toString()));
        r.started().ifPresent(st -> {
            o.put("accelerator", st.accelerator());
            ArrayNode notes = o.putArray("adapted");
            st.notes().forEach(notes::add);
        });
    }

    static String seconds(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1fs", d.toMillis() / 1000.0);
    }

    private void printDryRun(
            RecoveryPlan plan,
            ObjectTarget target,
            Failover.DryRun dry,
            Instant now,
            ArrayNode continuous,
            List<String> continuousLines)
            throws IOException {
        if (json) {
            ObjectNode out = Json.mapper().createObjectNode();
            out.put("dryRun", true);
            out.put("site", plan.site());
            out.put("source", plan.source());
            out.put("target", target.describe());
            ArrayNode vms = out.putArray("vms");
            dry.vms().forEach(vm -> toJson(vm, now, vms.addObject()));
            out.set("continuous", continuous);
            ArrayNode p = out.putArray("problems");
            dry.problems().forEach(p::add);
            out.put("ok", dry.ok());
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            return;
        }
        System.out.printf(
                "dry run of plan %s: site %s, source %s (%s reachable)%n",
                plan.file(), plan.site(), plan.source(), target.describe());
        for (RecoveryPlan.Group g : plan.groups()) {
            System.out.println("group " + g.name() + ":");
            dry.vms().stream().filter(vm -> vm.group().equals(g.name())).forEach(vm -> {
                System.out.println(describe(vm, now));
                vm.adaptations().forEach(a -> System.out.println("    would adapt: " + a));
            });
        }
        if (!continuousLines.isEmpty()) {
            System.out.println("continuous VMs (boot on the DR replica, or a DR point with --at/--point):");
            continuousLines.forEach(System.out::println);
        }
        dry.problems().forEach(p -> System.out.println("PROBLEM: " + p));
        System.out.println(
                dry.ok()
                        ? "the plan can be carried out; nothing was changed"
                        : "the plan cannot be" + " carried out as it is; nothing was changed");
    }

    private static void toJson(Failover.PlannedVm vm, Instant now, ObjectNode o) {
        Manifest m = vm.point();
        o.put("vm", vm.vm());
        o.put("group", vm.group());
        o.put("restorePoint", m.id());
        o.put("capturedAt", m.capturedAt().toString());
        o.put("rpoSeconds", Duration.between(m.capturedAt(), now).toSeconds());
        o.put("alreadyRunning", vm.running());
        ArrayNode disks = o.putArray("disks");
        vm.disks().forEach(d -> disks.add(d.toString()));
        ArrayNode adapt = o.putArray("adaptations");
        vm.adaptations().forEach(adapt::add);
    }

    private static String describe(Failover.PlannedVm vm, Instant now) {
        Manifest m = vm.point();
        return String.format(
                "  %s: %s point %s (captured %s, %s old), %d disk(s) %s, to %s, QEMU -m %d -smp %d",
                vm.vm(),
                vm.running() ? "already running from" : "restore",
                m.id(),
                m.capturedAt(),
                Human.duration(Duration.between(m.capturedAt(), now)),
                m.disks().size(),
                Human.bytes(m.sizeBytes()),
                vm.dir(),
                vm.spec().memoryMiB(),
                vm.spec().cpus());
    }
}
