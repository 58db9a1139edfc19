package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.nbd.NbdClient;
import io.tidemark.workers.qmp.QmpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark restore-instant} handing a restore point to a real QEMU, hydrating and pivoting it. */
class InstantRestoreCommandIT {

    private static final int MIB = 1 << 20;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @Test
    void servesAttachesHydratesAndPivotsAQemuDisk() throws Exception {
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        byte[] image = new byte[16 * MIB];
        new Random(4).nextBytes(image);
        Arrays.fill(image, 2 * MIB, 5 * MIB, (byte) 0);
        Manifest point = commit(repo, image);
        Path local = dir.resolve("web.raw");

        try (QemuVm vm = QemuVm.start(dir, "vm", MIB)) {
            int code = Main.execute(
                    "restore-instant",
                    "--from",
                    repoDir.toString(),
                    "--vm",
                    "web",
                    "--dir",
                    dir.resolve("ir").toString(),
                    "--qmp",
                    vm.qmpSocket().toString(),
                    "--device",
                    "scsi-hd",
                    "--node",
                    "rd0",
                    "--hydrate-to",
                    local.toString(),
                    "--format",
                    "raw",
                    "--json");
            assertThat(code).as(std.err()).isZero();
            // (test logging also goes to stdout: the summary is the block from "{" to "}")
            String out = std.out();
            int from = out.startsWith("{\n") ? 0 : out.indexOf("\n{\n") + 1;
            JsonNode j = Json.mapper().readTree(out.substring(from, out.indexOf("\n}", from) + 2));
            assertThat(j.path("restorePoint").asText()).isEqualTo(point.id());
            assertThat(j.path("disk").asText()).isEqualTo("sd0");
            assertThat(j.path("device").asText()).isEqualTo("rd0-dev");
            assertThat(j.path("activeNode").asText()).isEqualTo("rd0-local");
            assertThat(j.path("bytesHydrated").asLong()).isGreaterThanOrEqualTo(image.length);
            assertThat(j.path("bytesServed").asLong()).isPositive();
            assertThat(j.path("nbd").asText()).contains("sd0.nbd");
            // the server is gone; the VM reads its local image
            assertThat(dir.resolve("ir").resolve("sd0.nbd")).doesNotExist();
            vm.qemuIo("rd0-dev", "read -P 0 " + 3 * MIB + " 4096", "read 4096/4096 bytes at offset " + 3 * MIB);
            vm.quit();
        }
        assertThat(Restorer.sha256(local))
                .isEqualTo(HexFormat.of().formatHex(Digest.newSha256().digest(image)));
    }

    @Test
    void servesUntilInterruptedAndQemuReadsThePointThroughTheOverlay() throws Exception {
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        Repository repo = Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults());
        byte[] image = new byte[8 * MIB];
        new Random(6).nextBytes(image);
        commit(repo, image);
        Path ir = dir.resolve("ir");
        int[] code = {-1};
        Thread serving = new Thread(() -> code[0] =
                Main.execute("restore-instant", "--from", repoDir.toString(), "--vm", "web", "--dir", ir.toString()));
        serving.start();
        try {
            org.awaitility.Awaitility.await("the server comes up")
                    .atMost(java.time.Duration.ofSeconds(60))
                    .until(() -> std.out().contains("serving until interrupted") || !serving.isAlive());
            assertThat(serving.isAlive()).as(std.err()).isTrue();
            assertThat(std.out()).contains("-blockdev driver=qcow2,node-name=tm-web-sd0");
            // QEMU's own block layer reads the overlay, and through it our NBD server
            Path copy = dir.resolve("copy.raw");
            Process p = new ProcessBuilder(
                            "qemu-img",
                            "convert",
                            "-O",
                            "raw",
                            ir.resolve("sd0-overlay.qcow2").toString(),
                            copy.toString())
                    .redirectErrorStream(true)
                    .start();
            String out = new String(p.getInputStream().readAllBytes());
            assertThat(p.waitFor()).as(out).isZero();
            assertThat(Restorer.sha256(copy))
                    .isEqualTo(HexFormat.of().formatHex(Digest.newSha256().digest(image)));
        } finally {
            serving.interrupt();
            serving.join(60_000);
        }
        assertThat(serving.isAlive()).isFalse();
        assertThat(code[0]).isZero();
        assertThat(ir.resolve("sd0.nbd")).doesNotExist();
    }

    /**
     * q35 (QEMU 7.2, TCG): a virtio-blk-pci cannot be hot-plugged on pcie.0, so the command plugs it
     * into the free pcie-root-port (not the one a controller already uses); the guest-visible
     * device sits on that port and reads back the point's bytes.
     */
    @Test
    void plugsAPciDiskIntoAFreeRootPortOnQ35() throws Exception {
        byte[] image = randomImage(8 * MIB, 8);
        Path repoDir = repoWith(image);
        try (BareQemu vm = new BareQemu(
                dir,
                "q35",
                "-device",
                "pcie-root-port,id=busy0,bus=pcie.0,chassis=8",
                "-device",
                "virtio-scsi-pci,id=scsi0,bus=busy0",
                "-device",
                "pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9")) {
            serveAttached(repoDir, vm, image, "virtio-blk-pci", "tm-hp0");
        }
    }

    /** i440fx: pci.0 takes hot-plugged devices, so the command leaves the bus to QEMU. */
    @Test
    void plugsAPciDiskIntoPci0OnI440fx() throws Exception {
        byte[] image = randomImage(8 * MIB, 9);
        Path repoDir = repoWith(image);
        try (BareQemu vm = new BareQemu(dir, "pc")) {
            serveAttached(repoDir, vm, image, "virtio-blk-pci", "pci.0");
        }
    }

    /** --bus overrides the choice: the second of two free root ports. */
    @Test
    void busChoosesTheRootPort() throws Exception {
        byte[] image = randomImage(2 * MIB, 11);
        Path repoDir = repoWith(image);
        try (BareQemu vm = new BareQemu(
                dir,
                "q35",
                "-device",
                "pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9",
                "-device",
                "pcie-root-port,id=tm-hp1,bus=pcie.0,chassis=10")) {
            serveAttached(repoDir, vm, image, "virtio-blk-pci", "tm-hp1", "--bus", "tm-hp1");
        }
    }

    /** q35 whose only root port is taken: a clear error before anything is added to the VM. */
    @Test
    void q35WithoutAFreeRootPortSaysHowToAddOne() throws Exception {
        Path repoDir = repoWith(randomImage(MIB, 10));
        try (BareQemu vm = new BareQemu(
                dir,
                "q35",
                "-device",
                "pcie-root-port,id=busy0,bus=pcie.0,chassis=8",
                "-device",
                "virtio-scsi-pci,id=scsi0,bus=busy0")) {
            int code = refusedAttach(repoDir, vm);
            assertThat(code).isEqualTo(Main.EXIT_PERMANENT);
            assertThat(std.err())
                    .contains("no free PCIe root port", "busy0 (in use)")
                    .contains("-device pcie-root-port,id=tm-hp0,bus=pcie.0,chassis=9")
                    .contains("<controller type='pci' model='pcie-root-port'/>");
            for (JsonNode b : vm.ctl.execute("query-block")) {
                assertThat(b.path("inserted").path("node-name").asText()).isNotEqualTo("rd0");
            }
        }
    }

    /** --bus naming a root port that already holds a device is refused (QEMU would hide it at slot 1). */
    @Test
    void busOfAPortInUseIsRefused() throws Exception {
        Path repoDir = repoWith(randomImage(MIB, 12));
        try (BareQemu vm = new BareQemu(
                dir,
                "q35",
                "-device",
                "pcie-root-port,id=busy0,bus=pcie.0,chassis=8",
                "-device",
                "virtio-scsi-pci,id=scsi0,bus=busy0")) {
            int code = refusedAttach(repoDir, vm, "--bus", "busy0");
            assertThat(code).isEqualTo(Main.EXIT_PERMANENT);
            assertThat(std.err()).contains("bus 'busy0' is the PCIe port busy0, which already holds a device");
            assertThat(vm.ctl
                            .execute("qom-list", QmpClient.args().put("path", "/machine/peripheral"))
                            .toString())
                    .doesNotContain("rd0-dev");
        }
    }

    /**
     * Runs restore-instant --qmp --device virtio-blk-pci --node rd0 (plus {@code more}) where it must be
     * refused; with --hydrate-to, so that a regression ends (hydrated) instead of serving forever.
     */
    private int refusedAttach(Path repoDir, BareQemu vm, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "restore-instant",
                "--from",
                repoDir.toString(),
                "--vm",
                "web",
                "--dir",
                dir.resolve("ir").toString(),
                "--qmp",
                vm.qmp.toString(),
                "--device",
                "virtio-blk-pci",
                "--node",
                "rd0",
                "--hydrate-to",
                dir.resolve("x.raw").toString(),
                "--format",
                "raw"));
        args.addAll(List.of(more));
        return Main.execute(args.toArray(String[]::new));
    }

    /**
     * Runs restore-instant --qmp --device DRIVER until it serves, then checks through the test's own
     * monitor that the device exists on {@code expectedBus} and that its node reads the point.
     */
    private void serveAttached(
            Path repoDir, BareQemu vm, byte[] image, String driver, String expectedBus, String... more)
            throws Exception {
        int[] code = {-1};
        List<String> args = new ArrayList<>(List.of(
                "restore-instant",
                "--from",
                repoDir.toString(),
                "--vm",
                "web",
                "--dir",
                dir.resolve("ir").toString(),
                "--qmp",
                vm.qmp.toString(),
                "--device",
                driver,
                "--node",
                "rd0",
                "--json"));
        args.addAll(Arrays.asList(more));
        Thread serving = new Thread(() -> code[0] = Main.execute(args.toArray(String[]::new)));
        serving.start();
        try {
            Awaitility.await("the disk is attached")
                    .atMost(Duration.ofSeconds(90))
                    .until(() -> std.out().contains("\"secondsToAttach\"") || !serving.isAlive());
            assertThat(serving.isAlive()).as(std.err()).isTrue();
            // the guest-visible device, on the expected bus, with our node inserted
            String parent = vm.ctl
                    .execute(
                            "qom-get",
                            QmpClient.args()
                                    .put("path", "/machine/peripheral/rd0-dev")
                                    .put("property", "parent_bus"))
                    .asText();
            assertThat(parent).endsWith("/" + expectedBus);
            JsonNode block = null;
            for (JsonNode b : vm.ctl.execute("query-block")) {
                if (b.path("qdev").asText().startsWith("/machine/peripheral/rd0-dev")) {
                    block = b;
                }
            }
            assertThat(block).as("query-block has the device").isNotNull();
            assertThat(block.path("inserted").path("node-name").asText()).isEqualTo("rd0");
            // and it reads the restore point, through the overlay and our NBD server
            var addr = QmpClient.args().put("type", "unix");
            addr.putObject("data").put("path", dir.resolve("q.sock").toString());
            vm.ctl.execute("nbd-server-start", QmpClient.args().set("addr", addr));
            vm.ctl.execute(
                    "block-export-add",
                    QmpClient.args()
                            .put("type", "nbd")
                            .put("id", "e0")
                            .put("node-name", "rd0")
                            .put("name", "seen")
                            .put("writable", false));
            MessageDigest md = Digest.newSha256();
            try (NbdClient c = NbdClient.connect(dir.resolve("q.sock"), "seen", List.of())) {
                assertThat(c.size()).isEqualTo(image.length);
                for (long off = 0; off < c.size(); off += MIB) {
                    md.update(c.read(off, (int) Math.min(MIB, c.size() - off)));
                }
            }
            assertThat(HexFormat.of().formatHex(md.digest()))
                    .isEqualTo(HexFormat.of().formatHex(Digest.newSha256().digest(image)));
        } finally {
            serving.interrupt();
            serving.join(60_000);
        }
        assertThat(code[0]).isZero();
    }

    private static byte[] randomImage(int size, long seed) {
        byte[] image = new byte[size];
        new Random(seed).nextBytes(image);
        return image;
    }

    private Path repoWith(byte[] image) throws Exception {
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        commit(Repository.openOrInit(new FileObjectTarget(repoDir), RepositoryConfig.defaults()), image);
        return repoDir;
    }

    /**
     * A QEMU of machine type {@code machine} with no guest OS (TCG, running SeaBIOS), two QMP
     * sockets: {@code qmp} for the command under test, {@code ctl} for the test.
     */
    private static final class BareQemu implements AutoCloseable {
        final Path qmp;
        final Process process;
        final QmpClient ctl;

        BareQemu(Path dir, String machine, String... devices) throws Exception {
            qmp = dir.resolve("vm.qmp");
            Path ctlSocket = dir.resolve("vm.ctl");
            List<String> cmd = new ArrayList<>(List.of(
                    "qemu-system-x86_64",
                    "-machine",
                    machine,
                    "-accel",
                    "tcg",
                    "-display",
                    "none",
                    "-nodefaults",
                    "-m",
                    "64"));
            cmd.addAll(Arrays.asList(devices));
            cmd.addAll(List.of(
                    "-qmp",
                    "unix:" + qmp + ",server=on,wait=off",
                    "-qmp",
                    "unix:" + ctlSocket + ",server=on,wait=off"));
            process = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(dir.resolve("vm.log").toFile())
                    .start();
            try {
                Awaitility.await("QEMU's monitor")
                        .atMost(Duration.ofSeconds(30))
                        .until(() -> Files.exists(ctlSocket) || !process.isAlive());
                assertThat(process.isAlive()).as(() -> readLog(dir)).isTrue();
                ctl = QmpClient.connect(ctlSocket);
            } catch (Exception | AssertionError e) {
                process.destroyForcibly();
                throw e;
            }
        }

        private static String readLog(Path dir) {
            try {
                return Files.readString(dir.resolve("vm.log"));
            } catch (java.io.IOException e) {
                return e.toString();
            }
        }

        @Override
        public void close() throws Exception {
            ctl.close();
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void hydrationWithoutAQemuIsBadInput() {
        int code = Main.execute(
                "restore-instant",
                "--from",
                dir.toString(),
                "--vm",
                "web",
                "--dir",
                dir.resolve("ir").toString(),
                "--hydrate-to",
                dir.resolve("x.qcow2").toString());
        assertThat(code).as(std.err()).isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--hydrate-to needs --qmp");
    }

    private static Manifest commit(Repository repo, byte[] image) {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(image.length, Optional.empty());
        for (int c = 0; (long) c * chunk < image.length; c++) {
            byte[] data = Arrays.copyOfRange(image, c * chunk, Math.min(image.length, (c + 1) * chunk));
            index.set(c, repo.putChunk(data, data.length).digest());
        }
        Instant now = Instant.now();
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(now, new Random()),
                "web",
                "hv1",
                "job-1",
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry(
                        "sd0",
                        image.length,
                        chunk,
                        index.finish().hex(),
                        "tm-1",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }
}
