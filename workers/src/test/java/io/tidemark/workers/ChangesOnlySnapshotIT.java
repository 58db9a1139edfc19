package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.repository.Restorer;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.nbd.NbdClient;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An incremental's bounded capture (design §5.1.1) copies the old data before a guest write only
 * for the clusters the incremental reads, those its checkpoint marks, as QEMU's own incremental
 * backup job does: a write anywhere else goes ahead without a copy, and the restore point is still
 * the disk as it was at the snapshot moment. Real QEMU; the "guest" writes through its device (HMP
 * {@code qemu-io}), so through the copy-before-write filter.
 */
class ChangesOnlySnapshotIT {

    private static final int MIB = 1 << 20;
    private static final int CLUSTER = 64 << 10;
    private static final long DISK = 16L * MIB;

    @TempDir
    Path dir;

    private QmpRig rig;
    private volatile Runnable onCaptured = () -> {};

    @BeforeEach
    void setUp() throws IOException {
        rig = new QmpRig(dir, new CaptureHooks() {
            @Override
            public void onCaptured(String vm, Instant capturedAt) {
                onCaptured.run();
            }
        });
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void anIncrementalIsExactWhileTheGuestOverwritesChangedAndUnchangedClustersAfterTheSnapshot() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "co1", DISK)) {
            vm.write("sd0", 0, 4 * MIB, 0x01);
            Manifest full = rig.backup("co1");
            vm.write("sd0", MIB, CLUSTER, 0x11); // changed: the incremental reads this cluster
            vm.write("sd0", 6L * MIB, 4096, 0x12);
            String atSnapshot = vm.model("sd0").sha256();
            onCaptured = () -> { // after the snapshot moment, before the reads
                vm.write("sd0", MIB, CLUSTER, 0x21); // a changed cluster: copied first
                vm.write("sd0", 2L * MIB, CLUSTER, 0x22); // unchanged: goes ahead without a copy
                vm.write("sd0", 12L * MIB, CLUSTER, 0x23); // unchanged, never written before
            };
            Manifest inc = rig.backup("co1");
            onCaptured = () -> {};

            DiskEntry d = inc.disk("sd0").orElseThrow();
            assertThat(d.fullReason()).isEmpty();
            assertThat(inc.parent()).contains(full.id());
            assertThat(restoredSha(inc)).isEqualTo(atSnapshot);
            assertThat(restoredSha(inc)).isNotEqualTo(vm.model("sd0").sha256());
            // and the next incremental has every write made after that snapshot
            Manifest next = rig.backup("co1");
            assertThat(restoredSha(next)).isEqualTo(vm.model("sd0").sha256());
        }
    }

    @Test
    void theSnapshotOfAChangesOnlyCaptureKeepsTheChangedBlocksAndNothingElse() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "co2", DISK)) {
            vm.write("sd0", 0, 4 * MIB, 0x01);
            Manifest full = rig.backup("co2");
            String since = full.disk("sd0").orElseThrow().checkpoint();
            vm.write("sd0", MIB, CLUSTER, 0x11); // changed since the full

            // asked for the changes only: the blocks holding a change keep the snapshot, and QEMU copied
            // nothing else, so it refuses to read anything else from it
            try (Capture c = capture("co2", since, "tm-co2-a", changesOnly(DISK))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.snapshotOfChangesOnly()).isTrue();
                vm.write("sd0", MIB, CLUSTER, 0x21);
                vm.write("sd0", MIB + CLUSTER, CLUSTER, 0x22);
                vm.write("sd0", 2L * MIB, CLUSTER, 0x23);
                assertThat(read(e, MIB))
                        .as("a changed cluster keeps the snapshot")
                        .containsOnly(0x11);
                assertThat(read(e, MIB + CLUSTER))
                        .as("so does the rest of its block")
                        .containsOnly(0x01);
                assertThatThrownBy(() -> read(e, 2L * MIB))
                        .as("an unchanged block was not copied and cannot be read")
                        .hasRootCauseInstanceOf(NbdClient.ServerError.class);
                c.verifyIntact(); // the snapshot of what changed is whole
            }
            // the control: asked for the whole disk, the same writes leave the whole snapshot as it was
            vm.write("sd0", MIB, 2 * CLUSTER, 0x11);
            vm.write("sd0", MIB + CLUSTER, CLUSTER, 0x01);
            vm.write("sd0", 2L * MIB, CLUSTER, 0x01);
            try (Capture c = capture("co2", since, "tm-co2-b", CaptureRequest.ChangesOnly.NONE)) {
                DiskExport e = c.disks().get(0);
                assertThat(e.snapshotOfChangesOnly()).isFalse();
                vm.write("sd0", MIB, CLUSTER, 0x31);
                vm.write("sd0", 2L * MIB, CLUSTER, 0x32);
                assertThat(read(e, MIB)).containsOnly(0x11);
                assertThat(read(e, 2L * MIB)).containsOnly(0x01);
            }
            // a disk of another size than the reader's parent index is snapshot whole
            try (Capture c = capture("co2", since, "tm-co2-c", changesOnly(DISK / 2))) {
                assertThat(c.disks().get(0).snapshotOfChangesOnly()).isFalse();
            }
            assertThat(vm.bitmapNames("sd0")).noneMatch(b -> b.startsWith("tmfl-"));

            // a worker gone mid-capture leaves its bitmap of changed blocks; the next first contact removes it
            try (QmpHypervisor crashing = new QmpHypervisor(dir)) {
                crashing.capture(request("co2", since, "tm-co2-d", changesOnly(DISK)));
            } // closed under the open capture: everything stays in QEMU
            assertThat(bitmapsOfNode(vm)).anyMatch(b -> b.startsWith("tmfl-"));
            try (QmpHypervisor next = new QmpHypervisor(dir)) {
                assertThat(next.list()).hasSize(1);
            }
            assertThat(bitmapsOfNode(vm)).noneMatch(b -> b.startsWith("tmfl-")).contains(since);
        }
    }

    /** The bitmaps on the disk's own node (the device may still sit on a dead capture's filter). */
    private static List<String> bitmapsOfNode(QemuVm vm) {
        List<String> names = new java.util.ArrayList<>();
        for (com.fasterxml.jackson.databind.JsonNode n :
                vm.qmp("query-named-block-nodes", QemuVm.args().put("flat", true))) {
            if (n.path("node-name").asText().equals(vm.nodeName("sd0"))) {
                n.path("dirty-bitmaps").forEach(b -> names.add(b.path("name").asText()));
            }
        }
        return names;
    }

    /** The disk read by its changed 256 KiB blocks at {@code size} bytes. */
    private static CaptureRequest.ChangesOnly changesOnly(long size) {
        return new CaptureRequest.ChangesOnly(Map.of("sd0", size), 256 << 10);
    }

    private Capture capture(String vm, String since, String checkpoint, CaptureRequest.ChangesOnly changesOnly)
            throws IOException {
        return rig.hv.capture(request(vm, since, checkpoint, changesOnly));
    }

    private CaptureRequest request(String vm, String since, String checkpoint, CaptureRequest.ChangesOnly changesOnly)
            throws IOException {
        return new CaptureRequest(
                vm,
                Optional.of(since),
                checkpoint,
                Files.createDirectories(dir.resolve("w-" + checkpoint)),
                ConsistencyPolicy.CRASH,
                Optional.empty(),
                changesOnly);
    }

    /** One cluster of the export at {@code offset}, as unsigned bytes. */
    private static List<Integer> read(DiskExport e, long offset) {
        try (BlockSource s = NbdBlockSource.open(e)) {
            byte[] b = s.read(offset, CLUSTER).join();
            Integer[] out = new Integer[b.length];
            for (int i = 0; i < b.length; i++) {
                out[i] = b[i] & 0xff;
            }
            return Arrays.asList(out);
        }
    }

    private String restoredSha(Manifest m) throws IOException {
        Path out = dir.resolve("restored-" + m.id() + "-" + System.nanoTime() + ".raw");
        String sha = new Restorer(rig.repo, 2)
                .restoreDisk(m, "sd0", out, Restorer.Progress.NONE)
                .sha256();
        Files.delete(out);
        return sha;
    }
}
