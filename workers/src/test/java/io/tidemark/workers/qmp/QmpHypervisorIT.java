package io.tidemark.workers.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.testkit.contract.HypervisorContract;
import io.tidemark.testkit.qemu.DiskModel;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.NbdExports;
import io.tidemark.workers.nbd.NbdClient;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link QmpHypervisor} against real QEMU 7.2 VMs started by {@link QemuVm}: the {@link
 * HypervisorContract} every adapter passes, plus what is particular to QMP (bitmaps as QEMU shows
 * them, crashes, volatile checkpoints, leftovers of a crashed worker).
 */
class QmpHypervisorIT extends HypervisorContract {

    private static final int MIB = 1 << 20;
    private static final long GRAIN = CapturePlan.GRANULARITY;

    @Override
    protected Hypervisor newHypervisor() {
        return new QmpHypervisor(dir);
    }

    @Override
    protected GuestVm startVm(String name, long... diskSizes) {
        return QemuVm.start(dir, name, diskSizes);
    }

    @Override
    protected byte[] read(DiskExport export) {
        return NbdExports.readAll(export);
    }

    @Override
    protected List<long[]> dirtyExtents(DiskExport export) {
        return NbdExports.dirtyExtents(export);
    }

    /** A socket file nobody listens on. */
    @Override
    protected Unreachable unreachable() throws IOException {
        Path stale = dir.resolve("stale.qmp");
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(stale));
        }
        return new Unreachable(new QmpHypervisor(dir), "stale", stale.toString());
    }

    /** A committed full capture that starts checkpoint {@code tm-1}. */
    private void baseline(QmpHypervisor hv, String vm) throws IOException {
        try (Capture c = hv.capture(request(vm, null, "tm-1"))) {
            c.commit();
        }
    }

    @Test
    void aCaptureTellsTheVmsDefinitionAsQemuReportsIt() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm1", 32L * MIB, 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir);
                Capture c = hv.capture(request("vm1", null, "tm-1"))) {
            io.tidemark.core.repository.VmDefinition d = c.definition().orElseThrow();
            assertThat(d.source()).isEqualTo(io.tidemark.core.repository.VmDefinition.QMP);
            assertThat(d.machine()).startsWith("pc-q35-");
            assertThat(d.arch()).isEqualTo("x86_64");
            assertThat(d.cpus()).isEqualTo(1);
            assertThat(d.memoryBytes()).isEqualTo(64L * MIB);
            assertThat(d.cpuModel()).contains("qemu64");
            assertThat(d.firmware()).contains("bios");
            assertThat(d.disks())
                    .extracting(
                            io.tidemark.core.repository.VmDefinition.Disk::name,
                            io.tidemark.core.repository.VmDefinition.Disk::bus,
                            disk -> disk.device().orElse(""))
                    .containsExactly(
                            org.assertj.core.groups.Tuple.tuple("sd0", "scsi", "scsi-hd"),
                            org.assertj.core.groups.Tuple.tuple("sd1", "scsi", "scsi-hd"));
            assertThat(d.nics()).isEmpty();
            assertThat(d.domainXml()).isEmpty();
        }
    }

    @Test
    void nodesReasonsAndBitmapsAsQemuShowsThem() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm1", 32L * MIB, 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            vm.write("sd0", 0, 4 * MIB, 0x01);
            assertThat(hv.list())
                    .containsExactly(new VmInfo(
                            "vm1",
                            List.of(
                                    new DiskInfo("sd0", "sd0-fmt", 32L * MIB),
                                    new DiskInfo("sd1", "sd1-fmt", 16L * MIB))));
            try (Capture c = hv.capture(request("vm1", null, "tm-1"))) {
                assertThat(c.disks()).allSatisfy(e -> assertThat(e.fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("first backup")));
                c.commit();
            }
            for (String disk : List.of("sd0", "sd1")) {
                assertThat(vm.bitmap(disk, "tm-1")).hasValueSatisfying(b -> {
                    assertThat(b.path("persistent").asBoolean()).isTrue();
                    assertThat(b.path("recording").asBoolean()).isTrue();
                });
            }
            List<long[]> writes =
                    List.of(write(vm, "sd0", MIB + 100, 10, 0x41), write(vm, "sd0", 10L * MIB, 200 * 1024, 0x43));
            try (Capture c = hv.capture(request("vm1", "tm-1", "tm-2"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.dirtyBitmapContext()).hasValue("qemu:dirty-bitmap:tm-1");
                // while the capture runs, list() reports the captured node, not the fleece filter
                assertThat(hv.list()).singleElement().satisfies(v -> assertThat(v.disks())
                        .extracting(DiskInfo::node)
                        .containsExactly("sd0-fmt", "sd1-fmt"));
                // zeroes written after the capture do not show, and the grains are exact
                vm.writeZeroes("sd0", 0, 65536);
                assertThat(NbdExports.dirtyRanges(e)).containsExactlyElementsOf(grains(writes));
                // no commit: the new bitmap is merged back into tm-1, which records again
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-1");
            assertThat(vm.bitmap("sd0", "tm-1").orElseThrow().path("recording").asBoolean())
                    .isTrue();
            try (Capture c = hv.capture(request("vm1", "tm-1", "tm-3"))) {
                c.commit();
            }
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-3");
            assertThat(vm.bitmapNames("sd1")).containsExactly("tm-3");
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
                assertThat(e.fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("tm-1", "inconsistent"));
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
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("tm-3 missing"));
            }
        }
    }

    @Test
    void aNodeThatCannotPersistBitmapsIsIncrementalWhileItsVolatileCheckpointLivesAndFullWithAReasonWhenItIsGone()
            throws Exception {
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
            // the volatile checkpoint tm-1 lives in this QEMU, which has recorded every write since
            try (Capture c = hv.capture(request("vm7", "tm-1", "tm-2"))) {
                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly("sd0", "legacy");
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertThat(c.disks().get(1).incremental()).isTrue();
                c.commit();
            }
            assertThat(vm.bitmap("legacy", "tm-2")
                            .orElseThrow()
                            .path("persistent")
                            .asBoolean())
                    .isFalse();
            // gone, as after a QEMU restart: a full that says why
            vm.qmp(
                    "block-dirty-bitmap-remove",
                    QemuVm.args().put("node", "legacy-fmt").put("name", "tm-2"));
            try (Capture c = hv.capture(request("vm7", "tm-2", "tm-3"))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertThat(c.disks().get(1).fullReason()).hasValueSatisfying(r -> assertThat(r.detail())
                        .contains(
                                "tm-2 missing",
                                "qcow2 v2",
                                "cannot store persistent bitmaps",
                                "do not survive a QEMU restart"));
                assertThat(c.disks().get(1).sizeBytes()).isEqualTo(8L * MIB);
                assertThat(readAll(c.disks().get(1))).containsOnly(0);
                c.commit();
            }
        }
    }

    @Test
    void aSocketNobodyAnswersIsSkippedByListAndAMissingOneNamedAsUnknown() throws IOException {
        Unreachable u = unreachable();
        try (Hypervisor hv = u.hypervisor()) {
            assertThat(hv.list()).isEmpty();
            assertThatThrownBy(() -> hv.capture(request("ghost", null, "tm-1")))
                    .isInstanceOf(PermanentException.class)
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

    /**
     * QEMU's monitor serves one client: the adapter must hold it only while it works, so that an
     * operator's tool or a monitoring agent gets answers between jobs.
     */
    @Test
    void aThirdPartyQmpClientGetsAnswersBetweenJobs() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "vm9", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir)) {
            assertThat(hv.list()).extracting(VmInfo::name).containsExactly("vm9");
            assertThat(queryStatusAsAThirdParty(vm)).isEqualTo("running");
            baseline(hv, "vm9");
            assertThat(queryStatusAsAThirdParty(vm)).isEqualTo("running");
            try (Capture c = hv.capture(request("vm9", "tm-1", "tm-2"))) {
                c.commit();
            }
            hv.imageFiles("vm9");
            assertThat(queryStatusAsAThirdParty(vm)).isEqualTo("running");
            // and the adapter still works after the third party is gone
            assertThat(hv.list()).extracting(VmInfo::name).containsExactly("vm9");
        }
    }

    private static String queryStatusAsAThirdParty(QemuVm vm) {
        try (QmpClient operator = QmpClient.connect(vm.qmpSocket(), Duration.ofSeconds(10))) {
            return operator.execute("query-status").path("status").asText();
        }
    }

    /**
     * A QEMU stopped with SIGSTOP, before and during a capture: the capture, the NBD reads and a
     * close from another thread (a job's deadline cancelling it) each give up within a bound; after
     * SIGCONT the next capture works, is still incremental, and nothing of the failed ones remains.
     */
    @Test
    void aStoppedQemuFailsCapturesWithinTheBoundAndAfterContTheNextCaptureWorksAndLeavesNothing() throws Exception {
        Duration timeout = Duration.ofSeconds(3);
        Duration bound = timeout.multipliedBy(3).plusSeconds(10); // connect + greeting + slack for a loaded machine
        try (QemuVm vm = QemuVm.start(dir, "vm8", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir, Clock.systemUTC(), "tm-", timeout)) {
            vm.write("sd0", 0, MIB, 0x01);
            baseline(hv, "vm8");
            assertThat(hv.list()).extracting(VmInfo::name).containsExactly("vm8");
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, "sd0", 2L * MIB, 4096, 0x02));

            vm.suspendProcess();
            try {
                for (int attempt = 0; attempt < 3; attempt++) { // the later ones find the listen backlog full
                    long t0 = System.nanoTime();
                    assertTimeoutPreemptively(bound.multipliedBy(2), () -> assertThatThrownBy(
                                    () -> hv.capture(request("vm8", "tm-1", "tm-2")))
                            .isInstanceOf(RetriableException.class)
                            .hasMessageContaining(hv.socketOf("vm8").toString())
                            .hasMessageContaining("stopped"));
                    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(bound);
                }
                // the listing (inventory) still knows the VM: stopped is not gone
                assertThat(hv.list()).extracting(VmInfo::name).containsExactly("vm8");
            } finally {
                vm.resumeProcess();
            }

            Capture c = hv.capture(request("vm8", "tm-1", "tm-2"));
            DiskExport e = c.disks().get(0);
            try (NbdClient nbd = NbdClient.connect(e.nbdSocket(), e.exportName(), List.of(), timeout)) {
                assertThat(nbd.read(0, 4096)).containsOnly(1);
                vm.suspendProcess();
                try {
                    long t0 = System.nanoTime();
                    assertThatThrownBy(() -> nbd.read(MIB, 65536))
                            .isInstanceOf(RetriableException.class)
                            .hasMessageContaining("stopped");
                    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(bound);
                    // the job's deadline cancels it from another thread
                    long t1 = System.nanoTime();
                    CompletableFuture<Void> cancel = CompletableFuture.runAsync(c::close);
                    assertThatThrownBy(() -> cancel.get(bound.toMillis(), TimeUnit.MILLISECONDS))
                            .isInstanceOf(ExecutionException.class)
                            .hasCauseInstanceOf(RetriableException.class)
                            .hasMessageContaining("stopped");
                    assertThat(Duration.ofNanos(System.nanoTime() - t1)).isLessThan(bound);
                } finally {
                    vm.resumeProcess();
                }
            }

            writes.add(write(vm, "sd0", 6L * MIB, 4096, 0x03));
            try (Capture next = hv.capture(request("vm8", "tm-1", "tm-3"))) {
                DiskExport n = next.disks().get(0);
                assertThat(n.incremental())
                        .as("tm-1 still usable: %s", n.fullReason())
                        .isTrue();
                assertThat(dirtyRanges(n)).containsExactlyElementsOf(grains(writes));
                assertThat(DiskModel.sha256(readAll(n)))
                        .isEqualTo(vm.model("sd0").sha256());
                next.commit();
            }
            assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
            assertThat(vm.qmp("query-block-exports", null)).isEmpty();
            assertThat(nodeNames(vm)).noneMatch(n -> n.startsWith("tmfl-"));
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-3");
        }
    }

    /**
     * A job's deadline cancels it by interrupting its thread: a capture blocked on a stopped QEMU
     * returns at once (long before the adapter's own timeout), and the VM is capturable after
     * SIGCONT.
     */
    @Test
    void aCaptureBlockedOnAStoppedQemuReturnsAtOnceWhenItsThreadIsInterrupted() throws Exception {
        try (QemuVm vm = QemuVm.start(dir, "vm11", 16L * MIB);
                QmpHypervisor hv = new QmpHypervisor(dir, Clock.systemUTC(), "tm-", Duration.ofSeconds(120))) {
            baseline(hv, "vm11");
            CaptureRequest blocked = request("vm11", "tm-1", "tm-2");
            vm.suspendProcess();
            try {
                CompletableFuture<Throwable> outcome = new CompletableFuture<>();
                Thread job = new Thread(() -> {
                    try (Capture c = hv.capture(blocked)) {
                        outcome.complete(null);
                    } catch (RuntimeException e) {
                        outcome.complete(e);
                    }
                });
                job.start();
                await().atMost(Duration.ofSeconds(30)).until(() -> Arrays.stream(job.getStackTrace())
                        .anyMatch(f -> f.getClassName().equals(QmpClient.class.getName())));
                long t0 = System.nanoTime();
                job.interrupt();
                assertThat(outcome.get(10, TimeUnit.SECONDS)).isInstanceOf(RetriableException.class);
                assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(10));
            } finally {
                vm.resumeProcess();
            }
            try (Capture c = hv.capture(request("vm11", "tm-1", "tm-3"))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                c.commit();
            }
            assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
            assertThat(vm.bitmapNames("sd0")).containsExactly("tm-3");
        }
    }

    /**
     * A killed engine leaves its fleece node, job and export in QEMU: the adapter's first contact
     * with the VM (here a listing, as at start-up) removes them, and keeps what a live capture of
     * another process holds.
     */
    @Test
    void theFirstContactRemovesTheFleeceLeftOfADeadProcessAndKeepsALiveProcesses() throws Exception {
        try (QemuVm vm = QemuVm.start(dir, "vm10", 16L * MIB)) {
            String dead = "tmfl-" + deadTag() + "-0";
            plantFleece(vm, dead, "tmjob-" + dead.substring(5), "tmexp-" + dead.substring(5));
            ProcessHandle parent = ProcessHandle.current().parent().orElseThrow();
            String live = "tmfl-" + Long.toString(parent.pid(), 36) + "."
                    + Long.toString(parent.info().startInstant().orElseThrow().getEpochSecond(), 36) + ".1-0";
            plantNode(vm, live);
            assertThat(nodeNames(vm)).contains(dead, live);

            try (QmpHypervisor hv = new QmpHypervisor(dir)) {
                assertThat(hv.list()).extracting(VmInfo::name).containsExactly("vm10");
            }

            assertThat(nodeNames(vm)).doesNotContain(dead).contains(live);
            assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
            assertThat(vm.qmp("query-block-exports", null)).isEmpty();
            vm.qmp("blockdev-del", QemuVm.args().put("node-name", live));
        }
    }

    private void plantFleece(QemuVm vm, String node, String job, String export) throws Exception {
        plantNode(vm, node);
        vm.qmp(
                "blockdev-backup",
                QemuVm.args()
                        .put("device", vm.nodeName("sd0"))
                        .put("target", node)
                        .put("sync", "none")
                        .put("job-id", job));
        ObjectNode addr = QemuVm.args();
        addr.putObject("addr")
                .put("type", "unix")
                .putObject("data")
                .put("path", dir.resolve("planted.sock").toString());
        vm.qmp("nbd-server-start", addr);
        vm.qmp(
                "block-export-add",
                QemuVm.args()
                        .put("type", "nbd")
                        .put("id", export)
                        .put("node-name", node)
                        .put("name", "sd0")
                        .put("writable", false));
    }

    private void plantNode(QemuVm vm, String node) throws Exception {
        Path file = dir.resolve(node + ".qcow2");
        Process p = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", file.toString(), "16M")
                .redirectErrorStream(true)
                .start();
        assertThat(p.waitFor()).isZero();
        ObjectNode add = QemuVm.args().put("driver", "qcow2").put("node-name", node);
        add.putObject("file").put("driver", "file").put("filename", file.toString());
        add.put("backing", vm.nodeName("sd0"));
        vm.qmp("blockdev-add", add);
    }

    private static List<String> nodeNames(QemuVm vm) {
        List<String> names = new ArrayList<>();
        vm.qmp("query-named-block-nodes", QemuVm.args().put("flat", true))
                .forEach(n -> names.add(n.path("node-name").asText()));
        return names;
    }

    /** The tag a capture of a process that has exited carried. */
    private static String deadTag() throws IOException, InterruptedException {
        Process p = new ProcessBuilder("sleep", "60").start();
        long start = p.info().startInstant().orElseThrow().getEpochSecond();
        p.destroyForcibly();
        p.waitFor();
        return Long.toString(p.pid(), 36) + "." + Long.toString(start, 36) + ".1";
    }

    // ---- helpers

    private static long[] write(QemuVm vm, String disk, long offset, int length, int pattern) {
        vm.write(disk, offset, length, pattern);
        return new long[] {offset, length};
    }

    /** The bitmap grains (16 KiB) touched by the writes, merged, as "offset+length". */
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

    private static List<String> dirtyRanges(DiskExport e) {
        return NbdExports.dirtyRanges(e);
    }

    private static byte[] readAll(DiskExport e) {
        return NbdExports.readAll(e);
    }
}
