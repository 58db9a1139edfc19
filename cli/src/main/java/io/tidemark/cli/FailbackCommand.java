package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.recovery.DrHypervisor;
import io.tidemark.recovery.DrSite;
import io.tidemark.recovery.Failback;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "failback",
        mixinStandardHelpOptions = true,
        description = {
            "Bring the changes made at the DR site home.",
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
        Path homeDir = Failback.homeDir(plan, Optional.ofNullable(home));
        DrSite site = DrSite.of(plan);
        List<String> running;
        try (DrHypervisor host = DrHypervisor.of(plan, site)) {
            running = Failback.running(plan, host, Optional.ofNullable(only));
        }
        List<Failback.VmResult> results;
        try (ObjectTarget target = DrSources.open(engine, plan)) {
            Repository repo = Repository.open(target, engine.passphrases(engine.engineConfig()));
            results = new Failback(repo, site, parallel, clock, ProgressBars.onTerminal(json))
                    .run(plan, running, homeDir);
        }
        if (json) {
            ArrayNode out = Json.mapper().createArrayNode();
            results.forEach(r -> toJson(r, out.addObject()));
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        } else {
            results.forEach(FailbackCommand::print);
        }
        return 0;
    }

    /** One VM of a failback's JSON summary. */
    static void toJson(Failback.VmResult r, ObjectNode o) {
        o.put("vm", r.vm());
        o.put("restorePoint", r.point().id());
        o.put("capturedAt", r.point().capturedAt().toString());
        o.put("sizeBytes", r.point().sizeBytes());
        o.put("bytesRead", r.point().bytesRead());
        o.put("bytesShipped", r.point().bytesNew());
        o.put("seconds", r.took().toNanos() / 1e9);
        ArrayNode disks = o.putArray("disks");
        for (Restorer.Result d : r.disks()) {
            disks.addObject().put("image", d.image()).put("sha256", d.sha256());
        }
    }

    private static void print(Failback.VmResult r) {
        long size = r.point().sizeBytes();
        long shipped = r.point().bytesNew();
        System.out.printf(
                "failback of %s: point %s (captured %s), shipped %s of %s (%.2f %%), restored to %s in %.1f s%n",
                r.vm(),
                r.point().id(),
                r.point().capturedAt(),
                Human.bytes(shipped),
                Human.bytes(size),
                size == 0 ? 0.0 : 100.0 * shipped / size,
                r.home(),
                r.took().toNanos() / 1e9);
    }
}
