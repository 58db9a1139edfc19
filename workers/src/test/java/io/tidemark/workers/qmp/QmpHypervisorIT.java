package io.tidemark.workers.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.testkit.qemu.DiskModel;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.nbd.Extent;
import io.tidemark.workers.nbd.NbdClient;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link QmpHypervisor} against real QEMU 7.2 VMs started by {@link QemuVm}. */
class QmpHypervisorIT {

    private static final int MIB = 1 << 20;
    private static final long GRAIN = 65536;

    @TempDir
    Path dir;

    private int jobs;

    private CaptureRequest request(String vm, String since, String next) throws IOException {
        Path work = Files.createDirectories(dir.resolve("w" + ++jobs));
        return new CaptureRequest(vm, Optional.ofNullable(since), next, work);
    }

    /** A committed full capture that starts checkpoint {@code tm-1}. */
    private void baseline(QmpHypervisor hv, String vm) throws IOException {
        try (Capture c = hv.capture(request(vm, null, "tm-1"))) {
            c.commit();
        }
    }

    @Test
    void firstCaptureIsFullWithAReasonAndExportsTheDiskContent() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm1", 32L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            vm.write("sd0", 0, 65536, 0x11);
            vm.write("sd0", 5L * MIB + 4096, 100_000, 0x22);
            vm.write("sd0", 31L * MIB, MIB, 0x33);

            assertThat(hv.list())
                    .containsExactly(new VmInfo("vm1", List.of(new DiskInfo("sd0", "sd0-fmt", 32L * MIB))));

            Instant before = Instant.now();
            try (Capture c = hv.capture(request("vm1", null, "tm-1"))) {
                assertThat(c.capturedAt()).isBetween(before, Instant.now());
                DiskExport e = c.disks().get(0);
                assertThat(c.disks()).hasSize(1);
                assertThat(e.disk()).isEqualTo("sd0");
                assertThat(e.sizeBytes()).isEqualTo(32L * MIB);
                assertThat(e.incremental()).isFalse();
                assertThat(e.fullReason()).hasValueSatisfying(r -> assertThat(r).contains("first backup"));
                assertThat(DiskModel.sha256(readAll(e)))
                        .isEqualTo(vm.model("sd0").sha256());
                c.commit();
            }
            assertThat(vm.bitmap("sd0", "tm-1")).hasValueSatisfying(b -> {
                assertThat(b.path("persistent").asBoolean()).isTrue();
                assertThat(b.path("recording").asBoolean()).isTrue();
            });
        }
    }

    @Test
    void incrementalListsExactlyTheWrittenGrainsAndIsPointInTime() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm1", 32L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            vm.write("sd0", 0, 4 * MIB, 0x01);
            baseline(hv, "vm1");
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, "sd0", MIB + 100, 10, 0x41));
            writes.add(write(vm, "sd0", 3L * MIB - 10, 20, 0x42));
            writes.add(write(vm, "sd0", 10L * MIB, 200 * 1024, 0x43));
            DiskModel atCapture;
            List<long[]> after = new ArrayList<>();
            try (Capture c = hv.capture(request("vm1", "tm-1", "tm-2"))) {
                atCapture = vm.model("sd0").copy();
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isTrue();
                assertThat(e.dirtyBitmapContext()).hasValue("qemu:dirty-bitmap:tm-1");
                // the guest goes on writing: over dirty data, over clean data, zeroes over old data
                after.add(write(vm, "sd0", MIB, 65536, 0x99));
                after.add(write(vm, "sd0", 20L * MIB, MIB, 0x98));
                vm.writeZeroes("sd0", 0, 65536);
                after.add(new long[] {0, 65536});

                assertThat(dirtyRanges(e)).containsExactlyElementsOf(grains(writes));
                assertThat(DiskModel.sha256(readAll(e))).isEqualTo(atCapture.sha256());
                c.commit();
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-2");
            // the new checkpoint started at the capture instant: it holds exactly the later writes
            try (Capture c = hv.capture(request("vm1", "tm-2", "tm-3"))) {
                assertThat(dirtyRanges(c.disks().get(0))).containsExactlyElementsOf(grains(after));
                assertThat(DiskModel.sha256(readAll(c.disks().get(0))))
                        .isEqualTo(vm.model("sd0").sha256());
                c.commit();
            }
        }
    }

    @Test
    void twoDisksAreCapturedAtTheSameInstant() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm2", 32L * MIB, 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            vm.write("sd0", 0, MIB, 0x01);
            vm.write("sd1", 0, MIB, 0x02);
            baseline(hv, "vm2");
            List<long[]> w0 = List.of(write(vm, "sd0", 7L * MIB, 70_000, 0x51));
            List<long[]> w1 = List.of(write(vm, "sd1", 12_345, 1000, 0x52), write(vm, "sd1", 15L * MIB, MIB, 0x53));
            try (Capture c = hv.capture(request("vm2", "tm-1", "tm-2"))) {
                DiskModel m0 = vm.model("sd0").copy();
                DiskModel m1 = vm.model("sd1").copy();
                vm.write("sd0", 7L * MIB, MIB, 0x61);
                vm.write("sd1", 0, 2 * MIB, 0x62);
                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly("sd0", "sd1");
                assertThat(c.disks())
                        .extracting(DiskExport::nbdSocket)
                        .containsOnly(c.disks().get(0).nbdSocket());
                assertThat(c.disks()).allMatch(DiskExport::incremental);
                assertThat(hv.list()).singleElement().satisfies(v -> assertThat(v.disks())
                        .extracting(DiskInfo::node)
                        .containsExactly("sd0-fmt", "sd1-fmt"));
                assertThat(dirtyRanges(c.disks().get(0))).containsExactlyElementsOf(grains(w0));
                assertThat(dirtyRanges(c.disks().get(1))).containsExactlyElementsOf(grains(w1));
                assertThat(DiskModel.sha256(readAll(c.disks().get(0)))).isEqualTo(m0.sha256());
                assertThat(DiskModel.sha256(readAll(c.disks().get(1)))).isEqualTo(m1.sha256());
                c.commit();
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-2");
            assertThat(vm.bitmapNames("sd1")).containsExactly("tm-2");
        }
    }

    @Test
    void closeWithoutCommitKeepsEveryChangeForTheNextCapture() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm3", 32L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            baseline(hv, "vm3");
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, "sd0", 2L * MIB, 4096, 0x71));
            try (Capture c = hv.capture(request("vm3", "tm-1", "tm-2"))) {
                writes.add(write(vm, "sd0", 9L * MIB, 65536, 0x72)); // during the failed job
                assertThat(c.disks().get(0).incremental()).isTrue();
                // no commit(): the restore point was never written
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-1");
            assertThat(vm.bitmap("sd0", "tm-1").orElseThrow().path("recording").asBoolean())
                    .isTrue();
            writes.add(write(vm, "sd0", 30L * MIB, 3 * 65536, 0x73));
            try (Capture c = hv.capture(request("vm3", "tm-1", "tm-3"))) {
                assertThat(dirtyRanges(c.disks().get(0))).containsExactlyElementsOf(grains(writes));
                assertThat(DiskModel.sha256(readAll(c.disks().get(0))))
                        .isEqualTo(vm.model("sd0").sha256());
            }
        }
    }

    @Test
    void afterACrashTheCheckpointIsInconsistentAndTheNextCaptureIsFull() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm4", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            vm.write("sd0", 0, MIB, 0x01);
            baseline(hv, "vm4");
            vm.restart(); // a clean quit stores tm-1 in the qcow2; QEMU marks it in-use when it opens it
            vm.write("sd0", 5L * MIB, MIB, 0x02);
            vm.kill();
            vm.restart();
            assertThat(vm.bitmap("sd0", "tm-1")
                            .orElseThrow()
                            .path("inconsistent")
                            .asBoolean())
                    .isTrue();
            try (Capture c = hv.capture(request("vm4", "tm-1", "tm-2"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isFalse();
                assertThat(e.fullReason()).hasValueSatisfying(r -> assertThat(r).contains("tm-1", "inconsistent"));
                assertThat(DiskModel.sha256(readAll(e)))
                        .isEqualTo(vm.model("sd0").sha256());
                c.commit();
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-2");
            // a clean restart keeps the checkpoint usable
            vm.restart();
            List<long[]> w = List.of(write(vm, "sd0", 8L * MIB, 1, 0x03));
            try (Capture c = hv.capture(request("vm4", "tm-2", "tm-3"))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertThat(dirtyRanges(c.disks().get(0))).containsExactlyElementsOf(grains(w));
                c.commit();
            }
            // a checkpoint QEMU never stored (created after the last start) is simply gone after a crash
            vm.kill();
            vm.restart();
            try (Capture c = hv.capture(request("vm4", "tm-3", "tm-4"))) {
                assertThat(c.disks().get(0).fullReason())
                        .hasValueSatisfying(r -> assertThat(r).contains("tm-3 missing"));
            }
        }
    }

    @Test
    void aNodeThatCannotPersistBitmapsGetsAVolatileCheckpointAndFullCapturesThatSayWhy() throws Exception {
        try (QemuVm vm = QemuVm.start(dir, "vm7", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            Path v2 = dir.resolve("legacy.qcow2");
            Process p = new ProcessBuilder(
                            "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2.toString(), "8M")
                    .redirectErrorStream(true)
                    .start();
            assertThat(p.waitFor()).isZero();
            ObjectNode add = QemuVm.args().put("driver", "qcow2").put("node-name", "legacy-fmt");
            add.putObject("file").put("driver", "file").put("filename", v2.toString());
            vm.qmp("blockdev-add", add);
            vm.qmp(
                    "device_add",
                    QemuVm.args()
                            .put("driver", "scsi-hd")
                            .put("drive", "legacy-fmt")
                            .put("id", "legacy")
                            .put("share-rw", true));

            baseline(hv, "vm7");
            try (Capture c = hv.capture(request("vm7", "tm-1", "tm-2"))) {
                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly("sd0", "legacy");
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertThat(c.disks().get(1).fullReason())
                        .hasValueSatisfying(r -> assertThat(r).contains("qcow2 v2", "cannot store persistent bitmaps"));
                assertThat(c.disks().get(1).sizeBytes()).isEqualTo(8L * MIB);
                assertThat(readAll(c.disks().get(1))).containsOnly(0);
                c.commit();
            }
            assertThat(vm.bitmap("legacy", "tm-2")
                            .orElseThrow()
                            .path("persistent")
                            .asBoolean())
                    .isFalse();
        }
    }

    @Test
    void anUnreachableSocketIsRetriableAndNamesThePath() throws IOException {
        Path stale = dir.resolve("stale.qmp");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale)); // leaves a socket file nobody listens on
        }
        try (QmpHypervisor hv = new QmpHypervisor(dir)) {
            assertThat(hv.list()).isEmpty();
            assertThatThrownBy(() -> hv.capture(request("stale", null, "tm-1")))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(stale.toString());
            assertThatThrownBy(() -> hv.capture(request("ghost", null, "tm-1")))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(dir.resolve("ghost.qmp").toString());
        }
    }

    @Test
    void aCaptureInterruptedByAWorkerCrashIsRepairedAndForeignBitmapsAreKept() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm5", 16L * MIB)) {
            try (QmpHypervisor hv = new QmpHypervisor(dir)) {
                baseline(hv, "vm5");
            }
            vm.qmp(
                    "block-dirty-bitmap-add",
                    QemuVm.args().put("node", "sd0-fmt").put("name", "foreign"));
            vm.qmp(
                    "block-dirty-bitmap-add",
                    QemuVm.args().put("node", "sd0-fmt").put("name", "tm-stale"));
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, "sd0", MIB, 4096, 0x81));
            QmpHypervisor crashed = new QmpHypervisor(dir);
            Capture abandoned = crashed.capture(request("vm5", "tm-1", "tm-2"));
            assertThat(abandoned.disks()).hasSize(1);
            crashed.close(); // the worker dies: no close(), no commit(); export and job stay in QEMU
            writes.add(write(vm, "sd0", 4L * MIB, 4096, 0x82));

            try (QmpHypervisor hv = new QmpHypervisor(dir);
                    Capture c = hv.capture(request("vm5", "tm-1", "tm-3"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isTrue();
                assertThat(dirtyRanges(e)).containsExactlyElementsOf(grains(writes));
                assertThat(DiskModel.sha256(readAll(e)))
                        .isEqualTo(vm.model("sd0").sha256());
                c.commit();
            }
            assertThat(vm.bitmapNames("sd0")).containsExactlyInAnyOrder("foreign", "tm-3");
            assertThat(vm.qmp("query-block-exports", null)).isEmpty();
            assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
        }
    }

    @Test
    void aSecondCaptureOfTheSameVmIsRefusedWhileOneIsOpen() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm6", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir);
                Capture c = hv.capture(request("vm6", null, "tm-1"))) {
            assertThat(c.disks()).extracting(DiskExport::disk).containsExactlyElementsOf(vm.diskIds());
            assertThatThrownBy(() -> hv.capture(request("vm6", null, "tm-2")))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining("already open");
        }
    }

    // ---- helpers

    private static long[] write(QemuVm vm, String disk, long offset, int length, int pattern) {
        vm.write(disk, offset, length, pattern);
        return new long[] {offset, length};
    }

    /** The 64 KiB grains touched by the writes, merged, as "offset+length". */
    private static List<String> grains(List<long[]> writes) {
        List<long[]> ranges = new ArrayList<>();
        for (long[] w : writes) {
            long start = w[0] / GRAIN * GRAIN;
            long end = (w[0] + w[1] + GRAIN - 1) / GRAIN * GRAIN;
            ranges.add(new long[] {start, end});
        }
        ranges.sort((a, b) -> Long.compare(a[0], b[0]));
        List<long[]> merged = new ArrayList<>();
        for (long[] r : ranges) {
            if (!merged.isEmpty() && merged.get(merged.size() - 1)[1] >= r[0]) {
                long[] last = merged.get(merged.size() - 1);
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(new long[] {r[0], r[1]});
            }
        }
        return merged.stream().map(r -> r[0] + "+" + (r[1] - r[0])).toList();
    }

    /** The dirty extents of an incremental export, as "offset+length". */
    private static List<String> dirtyRanges(DiskExport e) {
        try (NbdClient c = NbdClient.connect(e)) {
            return c.blockStatus(e.dirtyBitmapContext().orElseThrow(), 0, c.size()).stream()
                    .filter(Extent::dirty)
                    .map(x -> x.offset() + "+" + x.length())
                    .toList();
        }
    }

    /** The whole export, reading only what base:allocation does not report as zeros. */
    private static byte[] readAll(DiskExport e) {
        try (NbdClient c = NbdClient.connect(e)) {
            byte[] out = new byte[(int) c.size()];
            List<CompletableFuture<Void>> reads = new ArrayList<>();
            for (Extent x : c.blockStatus(NbdClient.BASE_ALLOCATION, 0, c.size())) {
                if (x.zero()) {
                    continue;
                }
                for (long off = x.offset(); off < x.end(); off += MIB) {
                    long at = off;
                    int n = (int) Math.min(MIB, x.end() - off);
                    reads.add(c.readAsync(at, n).thenAccept(b -> System.arraycopy(b, 0, out, (int) at, n)));
                }
            }
            reads.forEach(CompletableFuture::join);
            return out;
        }
    }
}
