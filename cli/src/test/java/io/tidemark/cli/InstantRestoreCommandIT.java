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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
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
