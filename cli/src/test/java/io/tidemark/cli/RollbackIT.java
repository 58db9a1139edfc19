package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.DemoGuest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * "The deploy broke it: go back", on real parts: a pre-deploy hook snapshots the running QEMU VM,
 * the deploy writes over the disk, post-deploy reports the failure (the point is pinned), and
 * `tidemark rollback` returns the VM to the point in the same QEMU process: its disk then holds
 * exactly the bytes of the snapshot moment, and the engine goes on backing it up.
 */
class RollbackIT {

    private static final String VM = "shop-vm";
    private static final long DISK = 16L << 20;
    private static final String SHA = "4f2a9c1e";

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @Test
    void aFailedDeployIsPinnedAndTheVmReturnsToItsPreDeployPoint() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        try (QemuVm vm = QemuVm.start(qmpDir, VM, DISK)) {
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK), 7);
            guest.write(disk, 1 << 20, 1 << 20, 0x11);
            Path policies = Files.createDirectories(dir.resolve("policies"));
            Files.writeString(
                    policies.resolve("shop.yaml"),
                    """
                    name: shop
                    vms: {names: [%s]}
                    schedule: {interval: 1h}
                    rpo: 2h
                    triggers:
                      pre-deploy:
                        apps: [shop]
                    """
                            .formatted(VM));
            Path hookSecret = Files.writeString(dir.resolve("hook.secret"), "a-long-enough-shared-hook-secret");
            Path configFile = Files.writeString(
                    dir.resolve("tidemark.yaml"),
                    """
                    host: hv1
                    data: %s
                    qmpDir: %s
                    policies: %s
                    hooks:
                      address: 127.0.0.1:0
                      secretFile: %s
                    """
                            .formatted(dir.resolve("data"), qmpDir, policies, hookSecret));

            try (Engine engine = Engine.start(EngineConfig.load(configFile), guest, Clock.systemUTC())) {
                String url = "http://127.0.0.1:" + engine.hookPort().orElseThrow();
                await().atMost(Duration.ofSeconds(60))
                        .until(() -> !engine.repository().manifests(VM).isEmpty());
                guest.write(disk, 5 << 20, 512 << 10, 0x22); // the state the deploy starts from

                assertThat(run(
                                "hook",
                                "pre-deploy",
                                "--app",
                                "shop",
                                "--commit",
                                SHA,
                                "--pipeline",
                                "ci-9",
                                "--wait",
                                "committed",
                                "--url",
                                url,
                                "--secret-file",
                                hookSecret.toString()))
                        .as(std.err())
                        .isZero();
                Manifest point = engine.repository().manifests(VM).stream()
                        .filter(m -> m.trigger().is(TriggerKind.HOOK))
                        .findFirst()
                        .orElseThrow();
                String before = guest.at(point.capturedAt()).sha256().get(disk);

                // the deploy: it rewrites data the application needs
                guest.write(disk, 1 << 20, 2 << 20, 0x66);
                guest.write(disk, 9 << 20, 1 << 20, 0x67);
                assertThat(run(
                                "hook",
                                "post-deploy",
                                "--app",
                                "shop",
                                "--commit",
                                SHA,
                                "--outcome",
                                "failure",
                                "--url",
                                url,
                                "--secret-file",
                                hookSecret.toString()))
                        .as(std.err())
                        .isZero();
                assertThat(engine.repository().marks(VM).get(point.id()).kind()).isEqualTo(PointMark.Kind.PINNED);
                assertThat(run("list", "--from", dir.resolve("data/repo").toString(), "--vm", VM))
                        .isZero();
                assertThat(std.out())
                        .contains(point.id() + " ")
                        .contains("pre-deploy:shop@" + SHA + "  pinned: deploy of shop " + SHA + " failed");

                assertThat(run(
                                "rollback",
                                "--app",
                                "shop",
                                "--to",
                                "pre-deploy:" + SHA.substring(0, 7),
                                "--url",
                                url,
                                "--secret-file",
                                hookSecret.toString()))
                        .as(std.err())
                        .isZero();
                assertThat(std.out()).contains(point.id()).contains("returned 1 VM(s) of shop");

                // the same QEMU process now runs on a new image holding the pre-deploy bytes
                Path image = imageOf(vm, disk);
                assertThat(image.getFileName().toString()).contains(".rollback-" + point.id());
                Path rolledBack = raw(image);
                assertThat(Restorer.sha256(rolledBack)).isEqualTo(before);
                assertThat(vm.running()).isTrue();
                // the old image is left as the deploy left it
                assertThat(Files.exists(vm.diskFile(disk))).isTrue();

                // and the engine goes on backing the VM up: a full read of the new image (no bitmap there)
                vm.write(disk, 12 << 20, 64 << 10, 0x33);
                assertThat(run(
                                "hook",
                                "pre-deploy",
                                "--app",
                                "shop",
                                "--commit",
                                "5b3c0d2",
                                "--pipeline",
                                "ci-10",
                                "--wait",
                                "committed",
                                "--url",
                                url,
                                "--secret-file",
                                hookSecret.toString()))
                        .as(std.err())
                        .isZero();
                Manifest after = engine.repository().latest(VM).orElseThrow();
                assertThat(after.disks())
                        .allSatisfy(d -> assertThat(d.fullReason()).isPresent());
                Path restored = dir.resolve("after.raw");
                new Restorer(engine.repository(), 4).restoreDisk(after, disk, restored, Restorer.Progress.NONE);
                // what the disk holds now: the pre-deploy bytes plus that write (QEMU's qcow2 cache may not
                // be on disk yet, so the image file itself is not read again)
                try (var f = java.nio.channels.FileChannel.open(rolledBack, java.nio.file.StandardOpenOption.WRITE)) {
                    byte[] pattern = new byte[64 << 10];
                    java.util.Arrays.fill(pattern, (byte) 0x33);
                    f.write(java.nio.ByteBuffer.wrap(pattern), 12 << 20);
                }
                assertThat(Restorer.sha256(restored)).isEqualTo(Restorer.sha256(rolledBack));
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

    /** SHA-256 of the image's content, read while QEMU holds it open (force-share). */
    private Path raw(Path image) throws IOException, InterruptedException {
        Path out = Files.createTempFile(dir, "content", ".raw");
        Process p = new ProcessBuilder("qemu-img", "convert", "-U", "-O", "raw", image.toString(), out.toString())
                .inheritIO()
                .start();
        assertThat(p.waitFor()).isZero();
        return out;
    }

    private int run(String... args) {
        std.reset();
        return Main.execute(args);
    }
}
