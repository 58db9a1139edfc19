package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.hypervisor.DiskSwitch;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import io.tidemark.repository.Restorer;
import io.tidemark.scheduler.hook.RollbackHandler;
import io.tidemark.scheduler.hook.RollbackRequest;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.restore.Qcow2FileSink;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Returns the VMs of an app on this host to their pre-deploy restore points, without restarting
 * their QEMU: each disk is restored from the primary repository into a new qcow2 image next to the
 * current one (while the guest still runs), then the guest is paused, its disks are switched to the
 * new images, and it is reset. Runs under the VM's job lock, so no capture overlaps it. Needs a
 * hypervisor that offers a {@link DiskSwitch} ({@link #on}).
 */
public final class Rollback implements RollbackHandler {

    private static final Logger log = LoggerFactory.getLogger(Rollback.class);

    private final Repository repository;
    private final Hypervisor hypervisor;
    private final DiskSwitch disks;
    private final BackupWorker worker;
    private final Clock clock;

    /**
     * @param hypervisor lists this host's VMs
     * @param disks switches a VM's disks to the restored images
     * @param worker whose per-VM job lock the rollback of each VM holds
     */
    public Rollback(Repository repository, Hypervisor hypervisor, DiskSwitch disks, BackupWorker worker, Clock clock) {
        this.repository = repository;
        this.hypervisor = hypervisor;
        this.disks = disks;
        this.worker = worker;
        this.clock = clock;
    }

    /** A rollback on {@code hypervisor}'s VMs, when it can switch disks ({@link Hypervisor#diskSwitch()}). */
    public static Optional<Rollback> on(
            Repository repository, Hypervisor hypervisor, BackupWorker worker, Clock clock) {
        return hypervisor.diskSwitch().map(d -> new Rollback(repository, hypervisor, d, worker, clock));
    }

    @Override
    public List<RolledBack> apply(RollbackRequest request) {
        RestorePointSelector selector = new RestorePointSelector(clock);
        RestorePointSelector.Criterion tag =
                new RestorePointSelector.PreDeploy(Optional.of(request.app()), request.commit());
        Map<String, Manifest> points = new LinkedHashMap<>();
        List<String> without = new ArrayList<>();
        for (VmInfo vm : hypervisor.list()) {
            if (!request.vms().isEmpty() && !request.vms().contains(vm.name())) {
                continue;
            }
            try {
                points.put(vm.name(), selector.select(repository, vm.name(), tag));
            } catch (RestorePointSelector.NoRestorePointException e) {
                without.add(vm.name());
            }
        }
        if (points.isEmpty()) {
            throw new PermanentException("no VM on this host has a pre-deploy restore point of " + request.app() + " "
                    + request.commit() + (without.isEmpty() ? "" : " (VMs without one: " + without + ")")
                    + "; check the commit with `tidemark list`, and call the engine of the host that runs the VMs");
        }
        List<RolledBack> done = new ArrayList<>();
        for (Manifest m : points.values()) {
            try {
                done.add(worker.exclusively(m.vm(), () -> rollBack(m)));
            } catch (RuntimeException e) {
                String finished = done.stream().map(RolledBack::vm).toList().toString();
                throw new PermanentException(
                        "rollback of VM '" + m.vm() + "' to " + m.id() + " failed: " + e.getMessage()
                                + " (already rolled back: " + finished + ")",
                        e);
            }
        }
        return done;
    }

    private RolledBack rollBack(Manifest m) {
        Instant start = clock.instant();
        Map<String, Path> current = disks.imageFiles(m.vm());
        Map<String, Path> images = new LinkedHashMap<>();
        Restorer restorer = new Restorer(repository, 8);
        for (DiskEntry d : m.disks()) {
            Path now = current.get(d.name());
            if (now == null || !Files.isRegularFile(now)) {
                throw new PermanentException("VM '" + m.vm() + "' has no disk '" + d.name() + "' backed by a file"
                        + " (it has " + current + "); restore it by hand with `tidemark restore`");
            }
            Path image = now.resolveSibling(m.vm() + "-" + d.name() + ".rollback-" + m.id() + ".qcow2");
            try (Qcow2FileSink sink = Qcow2FileSink.create(image, d.sizeBytes())) {
                restorer.restore(m, d.name(), sink, Restorer.Progress.NONE);
            }
            images.put(d.name(), image);
        }
        disks.switchDisks(m.vm(), images);
        Duration took = Duration.between(start, clock.instant());
        log.info(
                "VM {} returned to restore point {} (captured {}) in {} ms",
                m.vm(),
                m.id(),
                m.capturedAt(),
                took.toMillis());
        Map<String, String> names = new LinkedHashMap<>();
        images.forEach((disk, path) -> names.put(disk, path.toString()));
        return new RolledBack(m.vm(), m.id(), m.capturedAt(), names, took);
    }
}
