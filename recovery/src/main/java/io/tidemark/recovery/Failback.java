package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.libvirt.LibvirtHypervisor;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Brings the changes made at a DR site home: each VM of the plan that runs at the DR site is
 * captured now (one consistent instant per VM) and backed up into the plan's source repository as a
 * point with trigger {@code failback} — the whole disk is read, only chunks the repository lacks
 * are stored — and that point is restored at home as {@code <home>/<vm>/<disk>.raw}. On a libvirt
 * DR host the capture goes through libvirt's backup API, so the failback point also carries the
 * domain's definition as it ran at the DR site: a plan whose {@code dr-host} is the home host then
 * defines and starts it there ({@code dr failover}), the same way in reverse.
 */
public final class Failback {

    /**
     * One VM brought home: the failback point (its byte counts say what was read and shipped), the
     * restored disks with their SHA-256, where they are, and how long capture and restore took.
     */
    public record VmResult(String vm, Manifest point, List<Restorer.Result> disks, Path home, Duration took) {
        public VmResult {
            disks = List.copyOf(disks);
        }
    }

    private final Repository repository;
    private final DrSite site;
    private final int parallel;
    private final Clock clock;
    private final RecoveryProgress progress;

    /** @param parallel chunks fetched in parallel */
    public Failback(Repository repository, DrSite site, int parallel, Clock clock, RecoveryProgress progress) {
        this.repository = repository;
        this.site = site;
        this.parallel = parallel;
        this.clock = clock;
        this.progress = progress;
    }

    /** Where the disks go at home: {@code to} if given, else the plan's home-dir. */
    public static Path homeDir(RecoveryPlan plan, Optional<Path> to) {
        return to.or(plan::homeDir)
                .orElseThrow(() -> new PermanentException(
                        "plan " + plan.file() + " has no home-dir; say where the disks go at home with --to DIR"));
    }

    /**
     * The VMs of the plan (only those in {@code only}, when given) that run at the DR site.
     *
     * @throws PermanentException when none does
     */
    public static List<String> running(RecoveryPlan plan, DrSite site, Optional<List<String>> only) {
        return running(plan, (DrHypervisor) site, only);
    }

    /** The VMs of the plan (only those in {@code only}, when given) that run at the DR host. */
    public static List<String> running(RecoveryPlan plan, DrHypervisor host, Optional<List<String>> only) {
        List<String> running = plan.vms().stream()
                .map(RecoveryPlan.Vm::name)
                .filter(v -> only.isEmpty() || only.get().contains(v))
                .filter(v -> host.status(v).isPresent())
                .toList();
        if (running.isEmpty()) {
            throw new PermanentException("no VM of plan " + plan.file() + " runs at the DR site ("
                    + (host instanceof DrSite s ? s.runDir().toString() : host.describe())
                    + "); nothing to bring home");
        }
        return running;
    }

    /** Captures, backs up and restores at home each VM of {@code vms}, one after the other. */
    public List<VmResult> run(RecoveryPlan plan, List<String> vms, Path homeDir) {
        List<VmResult> results = new ArrayList<>();
        try (Hypervisor hypervisor = plan.drHost().kind() == RecoveryPlan.HypervisorKind.LIBVIRT
                        ? new LibvirtHypervisor(plan.drHost().uri())
                        : new QmpHypervisor(site.runDir());
                OfflineBus bus = new OfflineBus();
                BackupWorker worker = new BackupWorker(
                        plan.site(),
                        hypervisor,
                        repository,
                        bus,
                        clock,
                        site.workDir().resolve("failback"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            for (String vm : vms) {
                results.add(bringHome(worker, plan.site(), vm, homeDir));
            }
        }
        return results;
    }

    private VmResult bringHome(BackupWorker worker, String drSite, String vm, Path homeDir) {
        Instant at = clock.instant();
        long t0 = System.nanoTime();
        Manifest m = worker.backup(
                "failback/" + vm + "/" + at.toEpochMilli(),
                new SnapshotJob(
                        vm,
                        drSite,
                        "failback",
                        new Trigger(TriggerKind.FAILBACK, Map.of("site", drSite)),
                        List.of(),
                        at));
        List<Restorer.Result> restored = new ArrayList<>();
        Restorer restorer = new Restorer(repository, parallel);
        for (DiskEntry d : m.disks()) {
            Path file = homeDir.resolve(vm).resolve(d.name() + ".raw");
            createParent(file);
            String label = vm + "/" + d.name();
            restored.add(restorer.restoreDisk(m, d.name(), file, (n, of) -> progress.restored(label, n, of)));
        }
        return new VmResult(vm, m, restored, homeDir.resolve(vm), Duration.ofNanos(System.nanoTime() - t0));
    }

    private static void createParent(Path file) {
        try {
            Files.createDirectories(file.getParent());
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot create " + file.getParent() + ": " + e.getMessage() + "; check the home directory", e);
        }
    }
}
