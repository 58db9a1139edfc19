package io.tidemark.workers;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;

/**
 * What the change-tracking ITs share: a file repository under {@code dir/repo}, the QMP hypervisor
 * over the QEMU sockets in {@code dir} (where {@code QemuVm.start(dir, …)} puts them) and a worker
 * with default limits backing those VMs up into the repository, host {@code hv1}, policy {@code pol}.
 */
final class QmpRig implements AutoCloseable {

    final Repository repo;
    final QmpHypervisor hv;
    final BackupWorker worker;
    private int jobs;

    QmpRig(Path dir) throws IOException {
        this(dir, CaptureHooks.NONE);
    }

    /** As {@link #QmpRig(Path)}, with the worker calling {@code hooks} around each capture. */
    QmpRig(Path dir, CaptureHooks hooks) throws IOException {
        Path root = Files.createDirectories(dir.resolve("repo"));
        repo = Repository.openOrInit(new FileObjectTarget(root), RepositoryConfig.defaults());
        hv = new QmpHypervisor(dir);
        worker = new BackupWorker(
                "hv1",
                hv,
                repo,
                new RecordingEventBus(),
                Clock.systemUTC(),
                dir.resolve("work"),
                hooks,
                NbdBlockSource::open);
    }

    /** A scheduled backup of {@code vm}, each with a job id of its own. */
    Manifest backup(String vm) {
        return worker.backup(
                "job-" + ++jobs, new SnapshotJob(vm, "hv1", "pol", Trigger.schedule("pol"), List.of(), Instant.now()));
    }

    /** Chunk (and patch) objects in the repository. */
    long chunkObjects() {
        return repo.target().list("chunks/").size();
    }

    @Override
    public void close() {
        worker.close();
        hv.close();
    }
}
