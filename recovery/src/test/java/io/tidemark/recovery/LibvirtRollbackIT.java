package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

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
import io.tidemark.testkit.libvirt.LibvirtDomain;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.libvirt.LibvirtHypervisor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Rollback} on a libvirt host (an isolated libvirtd): a pre-deploy point of a running
 * domain, a deploy that rewrites its disk, then the rollback returns the domain to the point. Its
 * disk then holds exactly the bytes of the snapshot moment by the guest model's own checksum, the
 * domain runs on the restored image per libvirt itself, the old image is left as it was, and the
 * next backup works (in full: the restored image has no checkpoint bitmap).
 */
class LibvirtRollbackIT {

    private static final String VM = "shop-lv";
    private static final long DISK = 16L << 20;
    private static final String SHA = "4f2a9c1e";

    @TempDir
    Path dir;

    @Test
    void theDomainRunsAgainFromItsPreDeployBytesOnTheRestoredImage() throws Exception {
        try (Libvirtd libvirtd = Libvirtd.start(dir.resolve("lv"));
                LibvirtDomain vm = libvirtd.startDomain(VM, DISK);
                FileObjectTarget target = new FileObjectTarget(Files.createDirectories(dir.resolve("repo")));
                LibvirtHypervisor hv = new LibvirtHypervisor(libvirtd.uri())) {
            vm.write("vda", 1 << 20, 1 << 20, 0x11);
            vm.write("vda", 5 << 20, 512 << 10, 0x22);
            Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());
            try (BackupWorker worker = new BackupWorker(
                    "hv1",
                    hv,
                    repo,
                    new RecordingEventBus(),
                    Clock.systemUTC(),
                    dir.resolve("work"),
                    CaptureHooks.NONE,
                    NbdBlockSource::open)) {
                Trigger preDeploy =
                        new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", SHA, "pipeline", "ci-9"));
                Manifest point = worker.backup(
                        "hook/shop/" + SHA, new SnapshotJob(VM, "hv1", "shop", preDeploy, List.of(), Instant.now()));
                String before = vm.model("vda").sha256();
                Path old = vm.diskFile("vda");
                String oldSha = Restorer.sha256(raw(old));

                // the deploy rewrites data the application needs
                vm.write("vda", 1 << 20, 2 << 20, 0x66);
                String deployed = Restorer.sha256(raw(old));

                Rollback rollback =
                        Rollback.on(repo, hv, worker, Clock.systemUTC()).orElseThrow();
                List<RollbackHandler.RolledBack> done =
                        rollback.apply(new RollbackRequest("shop", SHA.substring(0, 7), List.of()));

                assertThat(done).singleElement().satisfies(r -> {
                    assertThat(r.vm()).isEqualTo(VM);
                    assertThat(r.restorePointId()).isEqualTo(point.id());
                });
                Path image = Path.of(done.get(0).images().get("vda"));
                assertThat(image.getFileName().toString()).contains(".rollback-" + point.id());
                assertThat(Restorer.sha256(raw(image))).isEqualTo(before);
                String xml = libvirtd.virsh("dumpxml", VM);
                assertThat(xml).contains("<source file='" + image + "'").doesNotContain(old.toString());
                assertThat(libvirtd.virsh("domstate", VM).strip()).isEqualTo("running");
                assertThat(libvirtd.virsh("dumpxml", "--inactive", VM)).contains(image.toString());
                assertThat(Restorer.sha256(raw(old))).isEqualTo(deployed).isNotEqualTo(oldSha);

                Manifest next = worker.backup(
                        "p/" + VM + "/after",
                        new SnapshotJob(VM, "hv1", "p", Trigger.schedule("p"), List.of(), Instant.now()));
                assertThat(next.disks()).singleElement().satisfies(d -> assertThat(d.fullReason())
                        .isPresent());
            }
        }
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
