package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.scheduler.hook.RollbackHandler;
import io.tidemark.scheduler.hook.RollbackRequest;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.DemoGuest;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@link Rollback} use case on real QEMU, without the engine: a pre-deploy point of a running VM,
 * a deploy that rewrites its disk, then the rollback returns the VM to the point in the same QEMU
 * process. Its disk then holds exactly the bytes of the snapshot moment, by the guest model's own
 * checksum (not by the restore path), and the previous image is left as it was. (The engine's hook
 * endpoint and `tidemark rollback` calling this code: cli/RollbackIT.)
 */
class RollbackIT {

    private static final String VM = "shop-vm";
    private static final long DISK = 16L << 20;
    private static final String SHA = "4f2a9c1e";

    @TempDir
    Path dir;

    @Test
    void theVmRunsAgainFromItsPreDeployBytesInTheSameQemuAndTheOldImageStays() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        try (QemuVm vm = QemuVm.start(qmpDir, VM, DISK);
                FileObjectTarget target = new FileObjectTarget(Files.createDirectories(dir.resolve("repo")));
                QmpHypervisor hv = new QmpHypervisor(qmpDir, dir.resolve("state"))) {
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK), 7);
            guest.write(disk, 1 << 20, 1 << 20, 0x11);
            guest.write(disk, 5 << 20, 512 << 10, 0x22);
            Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
            try (BackupWorker worker = new BackupWorker(
                    "hv1",
                    hv,
                    repo,
                    new RecordingEventBus(),
                    Clock.systemUTC(),
                    dir.resolve("work"),
                    guest,
                    NbdBlockSource::open)) {
                Trigger preDeploy =
                        new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", SHA, "pipeline", "ci-9"));
                Manifest point = worker.backup(
                        "hook/shop/" + SHA, new SnapshotJob(VM, "hv1", "shop", preDeploy, List.of(), Instant.now()));
                String before = guest.at(point.capturedAt()).sha256().get(disk);
                long pid = vm.pid();

                // the deploy: it rewrites data the application needs
                guest.write(disk, 1 << 20, 2 << 20, 0x66);
                guest.write(disk, 9 << 20, 1 << 20, 0x67);

                Rollback rollback =
                        Rollback.on(repo, hv, worker, Clock.systemUTC()).orElseThrow();
                assertThatThrownBy(() -> rollback.apply(new RollbackRequest("shop", "0000000", List.of())))
                        .isInstanceOf(PermanentException.class)
                        .hasMessageContaining("no VM on this host has a pre-deploy restore point of shop 0000000")
                        .hasMessageContaining("VMs without one: [" + VM + "]");

                List<RollbackHandler.RolledBack> done =
                        rollback.apply(new RollbackRequest("shop", SHA.substring(0, 7), List.of()));

                assertThat(done).singleElement().satisfies(r -> {
                    assertThat(r.vm()).isEqualTo(VM);
                    assertThat(r.restorePointId()).isEqualTo(point.id());
                    assertThat(r.capturedAt()).isEqualTo(point.capturedAt());
                });
                Path image = imageOf(vm, disk);
                assertThat(done.get(0).images()).containsEntry(disk, image.toString());
                assertThat(image.getFileName().toString()).contains(".rollback-" + point.id());
                assertThat(Restorer.sha256(raw(image))).isEqualTo(before);
                assertThat(vm.running()).isTrue();
                assertThat(vm.pid()).as("the same QEMU process").isEqualTo(pid);
                // the old image is left as the deploy left it
                assertThat(Files.exists(vm.diskFile(disk))).isTrue();
            }
        }
    }

    /** The file the VM's disk device reads now, asked on the fixture's own monitor. */
    private static Path imageOf(QemuVm vm, String disk) {
        for (JsonNode dev : vm.qmp("query-block", QemuVm.args())) {
            if (dev.path("qdev").asText().endsWith(disk)) {
                return Path.of(dev.path("inserted").path("file").asText());
            }
        }
        throw new AssertionError("no device for disk " + disk);
    }

    /** The image's content as a raw file, read while QEMU holds it open (force-share). */
    private Path raw(Path image) throws Exception {
        Path out = Files.createTempFile(dir, "content", ".raw");
        Process p = new ProcessBuilder("qemu-img", "convert", "-U", "-O", "raw", image.toString(), out.toString())
                .inheritIO()
                .start();
        assertThat(p.waitFor()).isZero();
        return out;
    }
}
