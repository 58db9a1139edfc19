package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.recovery.DrSite;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "failback",
        mixinStandardHelpOptions = true,
        description = {
            "Bring the changes made at the DR site home. For each VM of the plan that runs at the DR site:",
            "capture its disks now (one consistent instant per VM), back them up into the plan's source target",
            "as a restore point with trigger 'failback' — the whole disk is read, but only chunks the target",
            "lacks are uploaded — then restore that point at home as <home>/<vm>/<disk>.raw. Prints per VM the",
            "bytes shipped against the disks' size. Stop the applications (or the VMs' writes) first when this",
            "is the final pass; an earlier pass while they run makes the final one small.",
            "",
            "Example:  tidemark dr failback --config /etc/tidemark/engine.yaml --plan dr-east.yaml --to /srv/vms",
            "",
            "Runbook: docs/runbooks/dr-failback.md",
        },
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
            "0:every running DR VM was captured and restored at home",
            "1:the plan is invalid",
            "2:no VM of the plan runs at the DR site, no home directory was given, or a capture or restore failed",
            "3:the target or a VM did not answer in time; re-run the same command"
        })
final class FailbackCommand implements Callable<Integer> {

    private static final Logger log = LoggerFactory.getLogger(FailbackCommand.class);

    @Mixin
    EngineOptions engine;

    @Option(names = "--plan", required = true, description = "the DR plan the VMs were failed over with")
    Path planFile;

    @Option(
            names = "--to",
            description = "home directory: each VM's disks are written to <dir>/<vm>/<disk>.raw"
                    + " (default: the plan's home-dir)")
    Path home;

    @Option(names = "--vm", description = "only these VMs (default: every VM of the plan that runs at the DR site)")
    List<String> only;

    @Option(names = "--parallel", defaultValue = "8", description = "chunks fetched in parallel (default: 8)")
    int parallel;

    @Option(names = "--json", description = "print a JSON summary instead of text; no progress bar")
    boolean json;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws IOException {
        RecoveryPlan plan = new RecoveryPlanParser().parseFile(planFile);
        Path homeDir = home != null
                ? home
                : plan.homeDir()
                        .orElseThrow(() -> new PermanentException("plan " + plan.file()
                                + " has no home-dir; say where the disks go at home with --to DIR"));
        DrSite site = new DrSite(plan.workDir());
        List<String> vms = plan.vms().stream()
                .map(RecoveryPlan.Vm::name)
                .filter(v -> only == null || only.contains(v))
                .toList();
        List<String> running =
                vms.stream().filter(v -> site.status(v).isPresent()).toList();
        if (running.isEmpty()) {
            throw new PermanentException("no VM of plan " + plan.file() + " runs at the DR site (" + site.runDir()
                    + "); nothing to bring home");
        }
        ArrayNode out = Json.mapper().createArrayNode();
        try (ObjectTarget target = DrSources.open(engine, plan)) {
            Repository repo = Repository.open(target, engine.passphrases(engine.engineConfig()));
            try (QmpHypervisor hypervisor = new QmpHypervisor(site.runDir());
                    OfflineBus bus = new OfflineBus();
                    BackupWorker worker = new BackupWorker(
                            plan.site(),
                            hypervisor,
                            repo,
                            bus,
                            clock,
                            site.workDir().resolve("failback"),
                            CaptureHooks.NONE,
                            NbdBlockSource::open)) {
                failback(running, worker, repo, homeDir, plan, out);
            }
        }
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        }
        return 0;
    }

    private void failback(
            List<String> running, BackupWorker worker, Repository repo, Path homeDir, RecoveryPlan plan, ArrayNode out)
            throws IOException {
        for (String vm : running) {
            Instant at = clock.instant();
            long t0 = System.nanoTime();
            Manifest m = worker.backup(
                    "failback/" + vm + "/" + at.toEpochMilli(),
                    new SnapshotJob(
                            vm,
                            plan.site(),
                            "failback",
                            new Trigger(TriggerKind.FAILBACK, Map.of("site", plan.site())),
                            List.of(),
                            at));
            List<Restorer.Result> restored = new ArrayList<>();
            Restorer restorer = new Restorer(repo, parallel);
            for (DiskEntry d : m.disks()) {
                Path file = homeDir.resolve(vm).resolve(d.name() + ".raw");
                Files.createDirectories(file.getParent());
                restored.add(restorer.restoreDisk(
                        m,
                        d.name(),
                        file,
                        new ProgressBar(System.err, vm + "/" + d.name(), !json && System.console() != null)));
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            ObjectNode o = out.addObject();
            o.put("vm", vm);
            o.put("restorePoint", m.id());
            o.put("capturedAt", m.capturedAt().toString());
            o.put("sizeBytes", m.sizeBytes());
            o.put("bytesRead", m.bytesRead());
            o.put("bytesShipped", m.bytesNew());
            o.put("seconds", secs);
            ArrayNode disks = o.putArray("disks");
            for (Restorer.Result r : restored) {
                disks.addObject().put("image", r.image().toString()).put("sha256", r.sha256());
            }
            if (!json) {
                System.out.printf(
                        "failback of %s: point %s (captured %s), shipped %s of %s (%.2f %%), restored to %s in"
                                + " %.1f s%n",
                        vm,
                        m.id(),
                        m.capturedAt(),
                        Human.bytes(m.bytesNew()),
                        Human.bytes(m.sizeBytes()),
                        m.sizeBytes() == 0 ? 0.0 : 100.0 * m.bytesNew() / m.sizeBytes(),
                        homeDir.resolve(vm),
                        secs);
            }
        }
    }

    /**
     * Failback runs outside the engine, so there is no event log to tell: the events a backup
     * announces are logged at debug level and dropped, and nothing is ever delivered.
     */
    static final class OfflineBus implements EventBus {
        @Override
        public void publish(String topic, String key, Event event) {
            log.debug("failback: not published (offline) to {}: {}", topic, event);
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }
}
