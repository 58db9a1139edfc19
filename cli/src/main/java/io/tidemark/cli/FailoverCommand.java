package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.recovery.DrChecks;
import io.tidemark.recovery.DrSite;
import io.tidemark.recovery.RecoveryPoints;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "failover",
        mixinStandardHelpOptions = true,
        description = {
            "Bring up the VMs of a DR plan at the DR site: pick each VM's newest restore point at the plan's",
            "source target (VMs tied by consistent-with come from the same firing), restore the disks under",
            "the plan's work-dir (in parallel within a group), start each VM in QEMU (daemonized, -accel tcg),",
            "and wait until every VM of a group runs before starting the next group. Prints per VM the",
            "restore point, the achieved RPO (how old its data is) and RTO (time from the start of the",
            "command until the VM ran). Re-running it reports VMs that already run and starts the rest.",
            "",
            "Example:  tidemark dr failover --config /etc/tidemark/engine.yaml --plan dr-east.yaml --dry-run",
            "          tidemark dr failover --config /etc/tidemark/engine.yaml --plan dr-east.yaml",
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

    /** How long a started VM may take to report {@code running}. */
    static final Duration RUN_TIMEOUT = Duration.ofMinutes(2);

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

    Clock clock = Clock.systemUTC();

    /** The outcome for one VM. */
    record VmResult(
            String vm,
            String group,
            Manifest point,
            String state,
            Duration rpo,
            Duration rto,
            Instant launchedAt,
            Instant runningAt,
            List<Path> disks) {}

    @Override
    public Integer call() throws IOException {
        long t0 = System.nanoTime();
        Instant started = clock.instant();
        RecoveryPlan plan = new RecoveryPlanParser().parseFile(planFile);
        try (ObjectTarget target = DrSources.open(engine, plan)) {
            Repository repo = Repository.open(target, engine.passphrases(engine.engineConfig()));
            Map<String, Manifest> points = RecoveryPoints.choose(plan, repo::manifests);
            DrSite site = new DrSite(plan.workDir());
            if (dryRun) {
                return dryRun(plan, target, points, site, started);
            }
            List<VmResult> results = new ArrayList<>();
            for (RecoveryPlan.Group group : plan.groups()) {
                results.addAll(bringUp(group, points, repo, site, t0));
            }
            print(plan, results);
            return 0;
        }
    }

    private List<VmResult> bringUp(
            RecoveryPlan.Group group, Map<String, Manifest> points, Repository repo, DrSite site, long t0) {
        List<RecoveryPlan.Vm> toStart = new ArrayList<>();
        List<VmResult> results = new ArrayList<>();
        for (RecoveryPlan.Vm vm : group.vms()) {
            if (site.status(vm.name()).isPresent()) {
                Manifest m = points.get(vm.name());
                results.add(new VmResult(
                        vm.name(),
                        group.name(),
                        m,
                        "already-running",
                        null,
                        null,
                        null,
                        null,
                        disks(site, vm.name(), m)));
            } else {
                toStart.add(vm);
            }
        }
        long total = toStart.stream()
                .mapToLong(v -> points.get(v.name()).sizeBytes())
                .sum();
        ProgressBar bar = new ProgressBar(System.err, "group " + group.name(), !json && System.console() != null);
        AtomicLong done = new AtomicLong();
        Map<String, Instant> launched = new java.util.concurrent.ConcurrentHashMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, toStart.size()), r -> {
            Thread t = new Thread(r, "failover-vm");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<?>> restores = new ArrayList<>();
            for (RecoveryPlan.Vm vm : toStart) {
                restores.add(pool.submit(() -> {
                    Manifest m = points.get(vm.name());
                    Restorer restorer = new Restorer(repo, parallel);
                    for (DiskEntry d : m.disks()) {
                        Path file = site.disk(vm.name(), d.name());
                        Files.createDirectories(file.getParent());
                        long[] last = {0};
                        restorer.restoreDisk(m, d.name(), file, (n, of) -> {
                            long delta;
                            synchronized (last) {
                                delta = n - last[0];
                                last[0] = n;
                            }
                            bar.update(done.addAndGet(delta), total);
                        });
                    }
                    site.start(vm, m.disks().stream().map(DiskEntry::name).toList());
                    launched.put(vm.name(), clock.instant());
                    return null;
                }));
            }
            for (Future<?> f : restores) {
                await(f);
            }
        } finally {
            pool.shutdownNow();
        }
        for (RecoveryPlan.Vm vm : toStart) {
            site.awaitRunning(vm.name(), RUN_TIMEOUT);
            Manifest m = points.get(vm.name());
            Duration rto = Duration.ofNanos(System.nanoTime() - t0);
            Instant now = clock.instant();
            results.add(new VmResult(
                    vm.name(),
                    group.name(),
                    m,
                    "started",
                    Duration.between(m.capturedAt(), now),
                    rto,
                    launched.get(vm.name()),
                    now,
                    disks(site, vm.name(), m)));
        }
        // report in plan order
        List<VmResult> ordered = new ArrayList<>();
        for (RecoveryPlan.Vm vm : group.vms()) {
            results.stream().filter(r -> r.vm().equals(vm.name())).forEach(ordered::add);
        }
        return ordered;
    }

    private static List<Path> disks(DrSite site, String vm, Manifest m) {
        return m.disks().stream().map(d -> site.disk(vm, d.name())).toList();
    }

    private static void await(Future<?> f) {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("failover interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TidemarkException t) {
                throw t;
            }
            throw new PermanentException("failover failed: " + e.getCause(), e.getCause());
        }
    }

    private void print(RecoveryPlan plan, List<VmResult> results) throws IOException {
        if (json) {
            ObjectNode out = Json.mapper().createObjectNode();
            out.put("site", plan.site());
            out.put("source", plan.source());
            ArrayNode vms = out.putArray("vms");
            for (VmResult r : results) {
                ObjectNode o = vms.addObject();
                o.put("vm", r.vm());
                o.put("group", r.group());
                o.put("state", r.state());
                o.put("restorePoint", r.point().id());
                o.put("capturedAt", r.point().capturedAt().toString());
                if (r.rpo() != null) {
                    o.put("rpoSeconds", r.rpo().toMillis() / 1000.0);
                    o.put("rtoSeconds", r.rto().toMillis() / 1000.0);
                    o.put("launchedAt", r.launchedAt().toString());
                    o.put("runningAt", r.runningAt().toString());
                }
                ArrayNode disks = o.putArray("disks");
                r.disks().forEach(d -> disks.add(d.toString()));
            }
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
            return;
        }
        System.out.printf("failover of plan %s to site %s from target '%s'%n", plan.file(), plan.site(), plan.source());
        System.out.printf("%-20s %-12s %-28s %-16s %10s %10s%n", "VM", "GROUP", "RESTORE POINT", "STATE", "RPO", "RTO");
        for (VmResult r : results) {
            System.out.printf(
                    "%-20s %-12s %-28s %-16s %10s %10s%n",
                    r.vm(),
                    r.group(),
                    r.point().id(),
                    r.state(),
                    r.rpo() == null ? "-" : seconds(r.rpo()),
                    r.rto() == null ? "-" : seconds(r.rto()));
        }
    }

    static String seconds(Duration d) {
        return String.format(java.util.Locale.ROOT, "%.1fs", d.toMillis() / 1000.0);
    }

    private int dryRun(RecoveryPlan plan, ObjectTarget target, Map<String, Manifest> points, DrSite site, Instant now)
            throws IOException {
        List<String> problems = new ArrayList<>();
        if (!DrChecks.onPath(DrSite.QEMU)) {
            problems.add(DrSite.QEMU + " is not on PATH (install qemu-system-x86)");
        }
        DrChecks.writable(site.workDir()).ifPresent(problems::add);
        ArrayNode vms = Json.mapper().createArrayNode();
        List<String> lines = new ArrayList<>();
        for (RecoveryPlan.Group g : plan.groups()) {
            lines.add("group " + g.name() + ":");
            for (RecoveryPlan.Vm vm : g.vms()) {
                Manifest m = points.get(vm.name());
                String socket = site.qmp(vm.name()).toString();
                if (socket.length() > DrSite.MAX_SOCKET_PATH) {
                    problems.add("the QMP socket path of " + vm.name() + " (" + socket + ") is longer than "
                            + DrSite.MAX_SOCKET_PATH + " bytes; choose a shorter work-dir");
                }
                boolean running = site.status(vm.name()).isPresent();
                ObjectNode o = vms.addObject();
                o.put("vm", vm.name());
                o.put("group", g.name());
                o.put("restorePoint", m.id());
                o.put("capturedAt", m.capturedAt().toString());
                o.put("rpoSeconds", Duration.between(m.capturedAt(), now).toSeconds());
                o.put("alreadyRunning", running);
                ArrayNode disks = o.putArray("disks");
                for (DiskEntry d : m.disks()) {
                    disks.add(site.disk(vm.name(), d.name()).toString());
                }
                lines.add(String.format(
                        "  %s: %s point %s (captured %s, %s old), %d disk(s) %s, to %s, QEMU -m %d -smp %d",
                        vm.name(),
                        running ? "already running from" : "restore",
                        m.id(),
                        m.capturedAt(),
                        StatusCommand.human(Duration.between(m.capturedAt(), now)),
                        m.disks().size(),
                        Human.bytes(m.sizeBytes()),
                        site.workDir().resolve(vm.name()),
                        vm.memoryMiB(),
                        vm.cpus()));
            }
        }
        if (json) {
            ObjectNode out = Json.mapper().createObjectNode();
            out.put("dryRun", true);
            out.put("site", plan.site());
            out.put("source", plan.source());
            out.put("target", target.describe());
            out.set("vms", vms);
            ArrayNode p = out.putArray("problems");
            problems.forEach(p::add);
            out.put("ok", problems.isEmpty());
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        } else {
            System.out.printf(
                    "dry run of plan %s: site %s, source %s (%s reachable)%n",
                    plan.file(), plan.site(), plan.source(), target.describe());
            lines.forEach(System.out::println);
            problems.forEach(p -> System.out.println("PROBLEM: " + p));
            System.out.println(
                    problems.isEmpty()
                            ? "the plan can be carried out; nothing was changed"
                            : "the plan cannot be" + " carried out as it is; nothing was changed");
        }
        return problems.isEmpty() ? 0 : Main.EXIT_PERMANENT;
    }
}
