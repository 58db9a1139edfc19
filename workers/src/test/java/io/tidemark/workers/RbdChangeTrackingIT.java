package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.rbd.RbdChangeTracker;
import io.tidemark.workers.rbd.RbdImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A disk on Ceph RBD (ADR 18), on real QEMU (TCG) and the throwaway Ceph: QEMU's rbd node cannot
 * keep a bitmap across a restart, so the backup after a restart takes its changes from the RBD
 * snapshot diff, reads only the changed chunks and restores bit-identically; one snapshot of ours
 * stays on the image.
 */
@ExtendWith(CephClusterExtension.class)
class RbdChangeTrackingIT {

    private static final int CHUNK = RepositoryConfig.defaults().chunkSize();
    private static final String POOL = "rbdvm";

    private static CephCluster ceph;

    @TempDir
    Path dir;

    private int pattern = 1;

    @BeforeAll
    static void cluster(CephCluster shared) {
        ceph = shared;
        ceph.createPool(POOL);
        cli("rbd", "pool", "init", POOL);
    }

    @Test
    void afterAQemuRestartTheBackupOfAnRbdDiskReadsOnlyTheChangedChunksAndRestoresBitIdentically() throws IOException {
        RbdImage image = RbdImage.of(POOL, "rb1");
        // objects of one chunk, so the whole-object (fast-diff) granularity is the chunk
        cli("rbd", "create", "--size", "16M", "--object-size", Integer.toString(CHUNK), image.spec());
        RbdChangeTracker rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
        try (QmpRig rig = new QmpRig(dir);
                QemuVm vm = QemuVm.start(dir, "rb1", 1L << 20)) {
            plug(vm, image);
            writeChunks(vm, 0, 5, 9);
            Manifest first = rig.backup("rb1");
            DiskEntry full = first.disk("rb0").orElseThrow();
            assertThat(full.fullReason()).map(FullReason::kind).contains(FullReason.Kind.FIRST_BACKUP);
            assertThat(rbd.snapshots(image)).containsExactly(full.checkpoint());
            assertRestores(rig, first, image);

            vm.restart(); // the rbd node's (non-persistent) bitmap is gone
            plug(vm, image);
            writeChunks(vm, 5, 20);
            Manifest second = rig.backup("rb1");
            DiskEntry afterRestart = second.disk("rb0").orElseThrow();
            // on main: full (checkpoint-missing), 16 MiB read
            assertThat(afterRestart.fullReason()).isEmpty();
            assertThat(afterRestart.bytesRead()).isEqualTo(2L * CHUNK);
            assertThat(afterRestart.bytesNew()).isEqualTo(2L * CHUNK);
            assertRestores(rig, second, image);
            // the base moved to the committed point; no end snapshot left behind
            assertThat(rbd.snapshots(image)).containsExactly(afterRestart.checkpoint());

            // without a restart the rbd node's own (non-persistent) bitmap serves: its 16 KiB granules
            // are read, not the diff's whole object (a chunk here)
            vm.qemuIo("rb0", "write -P 0x77 " + (5L * CHUNK + 4096) + " 4096", "wrote 4096/4096 bytes");
            Manifest third = rig.backup("rb1");
            DiskEntry again = third.disk("rb0").orElseThrow();
            assertThat(again.fullReason()).isEmpty();
            assertThat(again.bytesRead()).isEqualTo(16 * 1024);
            assertRestores(rig, third, image);
            assertThat(rbd.snapshots(image)).containsExactly(again.checkpoint());
        }
    }

    @Test
    void leftoversOfInterruptedCapturesAreRemovedAndAVanishedBaseGivesAFullThatNamesIt() throws IOException {
        RbdImage image = RbdImage.of(POOL, "rb2");
        cli("rbd", "create", "--size", "16M", "--object-size", Integer.toString(CHUNK), image.spec());
        RbdChangeTracker rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
        try (QmpRig rig = new QmpRig(dir);
                QemuVm vm = QemuVm.start(dir, "rb2", 1L << 20)) {
            plug(vm, image);
            writeChunks(vm, 0, 7);
            Manifest first = rig.backup("rb2");
            String cp = first.disk("rb0").orElseThrow().checkpoint();
            String ours = cp.substring(0, cp.indexOf('-', "tm-".length()) + 1); // the owner's prefix
            // what a capture killed after its base, or after its end snapshot, leaves; and another tool's
            for (String s : List.of(ours + "killed", ours + "killed-end", "nightly")) {
                rbd.createSnapshot(image, s);
            }

            vm.restart();
            plug(vm, image);
            writeChunks(vm, 7);
            Manifest second = rig.backup("rb2");
            DiskEntry d = second.disk("rb0").orElseThrow();
            assertThat(d.fullReason()).isEmpty();
            assertThat(d.bytesRead()).isEqualTo(CHUNK);
            assertThat(rbd.snapshots(image)).containsExactlyInAnyOrder(d.checkpoint(), "nightly");

            rbd.deleteSnapshot(image, d.checkpoint()); // someone removes our base
            vm.restart();
            plug(vm, image);
            writeChunks(vm, 3);
            Manifest third = rig.backup("rb2");
            DiskEntry full = third.disk("rb0").orElseThrow();
            assertThat(full.fullReason()).hasValueSatisfying(r -> assertThat(r.detail())
                    .contains("RBD snapshot " + image.spec(d.checkpoint()) + " is gone too"));
            assertThat(full.bytesRead()).isEqualTo(3L * CHUNK); // every written chunk
            assertRestores(rig, third, image);
            assertThat(rbd.snapshots(image)).containsExactlyInAnyOrder(full.checkpoint(), "nightly");
        }
    }

    /** Hot-plugs the image as SCSI disk {@code rb0} through QEMU's rbd driver. */
    private static void plug(QemuVm vm, RbdImage image) {
        ObjectNode node = QemuVm.args()
                .put("driver", "rbd")
                .put("node-name", "rb0-node")
                .put("pool", image.pool())
                .put("image", image.name())
                .put("conf", ceph.confFile().toString())
                .put("user", "admin");
        vm.qmp("blockdev-add", node);
        vm.qmp(
                "device_add",
                QemuVm.args()
                        .put("driver", "scsi-hd")
                        .put("drive", "rb0-node")
                        .put("id", "rb0")
                        .put("share-rw", true));
    }

    private void writeChunks(QemuVm vm, int... chunks) {
        for (int c : chunks) {
            long offset = (long) c * CHUNK;
            vm.qemuIo(
                    "rb0",
                    String.format("write -P 0x%02x %d %d", pattern++ & 0xff, offset, CHUNK),
                    "wrote " + CHUNK + "/" + CHUNK + " bytes at offset " + offset);
        }
    }

    /** The restored disk equals the image as Ceph has it now (the guest is idle: no writes since). */
    private void assertRestores(QmpRig rig, Manifest m, RbdImage image) throws IOException {
        Path restored = dir.resolve("restored-" + m.id() + ".raw");
        String sha = new Restorer(rig.repo, 4)
                .restoreDisk(m, "rb0", restored, Restorer.Progress.NONE)
                .sha256();
        Path exported = dir.resolve("exported-" + m.id() + ".raw");
        cli("rbd", "export", "--no-progress", image.spec(), exported.toString());
        assertThat(sha).as("restored rb0 of %s", m.id()).isEqualTo(sha256(exported));
        Files.delete(restored);
        Files.delete(exported);
    }

    private static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void cli(String... args) {
        ExternalCommand.of(List.of(args))
                .env("CEPH_CONF", ceph.confFile().toString())
                .run();
    }
}
