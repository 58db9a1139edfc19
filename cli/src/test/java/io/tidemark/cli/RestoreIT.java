package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tidemark restore} on real parts: restore points of a two-disk QEMU VM (TCG) captured live
 * over NBD into a repository on S3Proxy; restored from S3 by id, time and pre-deploy tag to raw and
 * qcow2 files and to an RBD image on a real single-node Ceph, each compared with the disk's SHA-256
 * at its snapshot moment.
 */
@ExtendWith(CephClusterExtension.class)
class RestoreIT {

    private static final String VM = "web-1";
    private static final long SD0 = 24L << 20;
    private static final long SD1 = 8L << 20;
    private static final String COMMIT = "3f9a1c2b7e";

    @TempDir
    static Path dir;

    private static EmbeddedS3 s3;
    private static Path config;
    /** The three points, oldest first, and each disk's SHA-256 at the point's snapshot moment. */
    private static final List<Manifest> points = new ArrayList<>();

    private static final List<Map<String, String>> shas = new ArrayList<>();

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @BeforeAll
    static void capturePoints() throws IOException {
        s3 = EmbeddedS3.builder()
                .filesystem(Files.createDirectories(dir.resolve("s3")))
                .build()
                .start();
        s3.createBucket("tm-restore");
        Path qmp = Files.createDirectories(dir.resolve("qmp"));
        S3TargetSpec c = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket("tm-restore")
                .prefix("site")
                .pathStyle(true)
                .build();
        try (S3ObjectTarget target = S3ObjectTarget.create(c, S3Credentials.of(s3.accessKey(), s3.secretKey()));
                QemuVm vm = QemuVm.start(qmp, VM, SD0, SD1);
                QmpHypervisor hv = new QmpHypervisor(qmp);
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        Repository.openOrInit(target, RepositoryConfig.defaults()),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            String sd0 = vm.diskIds().get(0);
            String sd1 = vm.diskIds().get(1);
            vm.write(sd0, 0, 1 << 20, 0x11);
            vm.write(sd0, 9L << 20, 300_000, 0x12);
            vm.write(sd1, 2L << 20, 65536, 0x13);
            capture(vm, worker, "j1", Trigger.schedule("pol"));
            vm.write(sd0, 512 << 10, 4096, 0x21);
            vm.write(sd1, 7L << 20, 1 << 20, 0x22);
            capture(
                    vm,
                    worker,
                    "j2",
                    new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", COMMIT, "pipeline", "p-7")));
            vm.writeZeroes(sd0, 0, 1 << 20);
            vm.write(sd0, 20L << 20, 1 << 20, 0x31);
            capture(vm, worker, "j3", Trigger.schedule("pol"));
        }
        // the engine config naming the S3 target; the keys come from files, never the command line
        Path access = Files.writeString(dir.resolve("s3.access"), s3.accessKey());
        Path secret = Files.writeString(dir.resolve("s3.secret"), s3.secretKey());
        config = Files.writeString(
                dir.resolve("engine.yaml"),
                """
                targets:
                  offsite:
                    type: s3
                    endpoint: %s
                    region: %s
                    bucket: tm-restore
                    prefix: site
                    pathStyle: true
                    accessKeyFile: %s
                    secretKeyFile: %s
                    retryDeadline: 0s
                """
                        .formatted(s3.endpoint(), s3.region(), access, secret));
    }

    private static void capture(QemuVm vm, BackupWorker worker, String job, Trigger trigger) {
        Manifest m = worker.backup(job, new SnapshotJob(VM, "hv1", "pol", trigger, List.of(), Instant.now()));
        Map<String, String> sha = new LinkedHashMap<>();
        for (String disk : vm.diskIds()) {
            sha.put(disk, vm.model(disk).sha256());
        }
        points.add(m);
        shas.add(sha);
    }

    @AfterAll
    static void stop() {
        if (s3 != null) {
            s3.close();
        }
    }

    private JsonNode restore(String... args) throws IOException {
        std.reset();
        List<String> all = new ArrayList<>(List.of("restore", "--config", config.toString(), "--from", "offsite"));
        all.addAll(List.of(args));
        all.add("--json");
        int exit = Main.execute(all.toArray(String[]::new));
        assertThat(exit).as(std.err()).isZero();
        return Json.mapper().readTree(std.out());
    }

    private int restoreFails(String... args) {
        std.reset();
        List<String> all = new ArrayList<>(List.of("restore", "--config", config.toString(), "--from", "offsite"));
        all.addAll(List.of(args));
        return Main.execute(all.toArray(String[]::new));
    }

    @Test
    void byIdToRawFilesEveryDiskEqualsItsSnapshotMoment() throws IOException {
        Manifest first = points.get(0);
        Path out = dir.resolve("raw-" + first.id());
        JsonNode j = restore("--vm", VM, "--point", first.id(), "--out", out.toString());
        assertThat(j.path("restorePoint").asText()).isEqualTo(first.id());
        assertThat(j.path("vm").asText()).isEqualTo(VM);
        assertThat(j.path("from").asText()).contains("tm").contains("site");
        assertThat(j.path("disks")).hasSize(2);
        for (JsonNode d : j.path("disks")) {
            String disk = d.path("disk").asText();
            Path image = out.resolve(disk + ".raw");
            assertThat(d.path("image").asText()).isEqualTo(image.toString());
            assertThat(d.path("format").asText()).isEqualTo("raw");
            assertThat(d.path("sha256").asText())
                    .isEqualTo(shas.get(0).get(disk))
                    .isEqualTo(Restorer.sha256(image));
            assertThat(d.path("sizeBytes").asLong()).isEqualTo(Files.size(image));
            assertThat(d.path("bytesFetched").asLong())
                    .isPositive()
                    .isLessThan(d.path("sizeBytes").asLong());
            assertThat(d.path("seconds").asDouble()).isPositive();
        }
    }

    @Test
    void byPreDeployTagToSparseQcow2() throws Exception {
        Path out = dir.resolve("qcow2-tag");
        JsonNode j =
                restore("--vm", VM, "--tag", "pre-deploy:shop@3f9a1c2", "--format", "qcow2", "--out", out.toString());
        Manifest tagged = points.get(1);
        assertThat(j.path("restorePoint").asText()).isEqualTo(tagged.id());
        assertThat(j.path("tag").asText()).isEqualTo("pre-deploy:shop@" + COMMIT);
        assertThat(j.path("disks")).hasSize(2);
        for (JsonNode d : j.path("disks")) {
            String disk = d.path("disk").asText();
            Path image = out.resolve(disk + ".qcow2");
            assertThat(d.path("format").asText()).isEqualTo("qcow2");
            assertThat(exec("qemu-img", "info", "--output=json", image.toString()))
                    .contains("\"format\": \"qcow2\"")
                    .contains("\"virtual-size\": " + d.path("sizeBytes").asLong());
            Path raw = dir.resolve("check-" + disk + ".raw");
            exec("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image.toString(), raw.toString());
            assertThat(Restorer.sha256(raw))
                    .isEqualTo(shas.get(1).get(disk))
                    .isEqualTo(d.path("sha256").asText());
            // sparse: the qcow2 holds about the fetched data, not the virtual size
            assertThat(Files.size(image)).isLessThan(d.path("bytesFetched").asLong() + (2L << 20));
        }
    }

    @Test
    void byTimeTheNewestPointAtOrBeforeItOneDiskToAFile() throws IOException {
        Instant between = points.get(1)
                .capturedAt()
                .plus(Duration.between(points.get(1).capturedAt(), points.get(2).capturedAt())
                        .dividedBy(2));
        Path file = dir.resolve("at/sd1-as-of.raw");
        JsonNode j = restore("--vm", VM, "--at", between.toString(), "--disk", "sd1", "--out", file.toString());
        assertThat(j.path("restorePoint").asText()).isEqualTo(points.get(1).id());
        assertThat(j.path("disks")).hasSize(1);
        assertThat(Restorer.sha256(file)).isEqualTo(shas.get(1).get("sd1"));

        // no criterion: the newest; '2h ago' is before every point: exit 2, naming the oldest
        assertThat(restore(
                                "--vm",
                                VM,
                                "--disk",
                                "sd0",
                                "--out",
                                dir.resolve("newest.raw").toString())
                        .path("restorePoint")
                        .asText())
                .isEqualTo(points.get(2).id());
        assertThat(Restorer.sha256(dir.resolve("newest.raw")))
                .isEqualTo(shas.get(2).get("sd0"));
        assertThat(restoreFails(
                        "--vm", VM, "--at", "2h ago", "--out", dir.resolve("x").toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("the oldest ones: " + points.get(0).id());
        assertThat(restoreFails(
                        "--vm",
                        VM,
                        "--at",
                        "last tuesday",
                        "--out",
                        dir.resolve("x").toString()))
                .isEqualTo(1);
        assertThat(std.err()).contains("'last tuesday' is not a time");
        assertThat(dir.resolve("x")).doesNotExist();
    }

    @Test
    void toAnRbdImageOnARealCeph(CephCluster ceph) throws Exception {
        ceph.createPool("restore-it");
        String spec = "rbd:restore-it/web-1-restored:conf=" + ceph.confFile() + ":id=admin";
        JsonNode j = restore("--vm", VM, "--point", points.get(2).id(), "--out", spec);
        assertThat(j.path("disks")).hasSize(2);
        for (JsonNode d : j.path("disks")) {
            String disk = d.path("disk").asText();
            assertThat(d.path("format").asText()).isEqualTo("rbd");
            assertThat(d.path("image").asText()).isEqualTo("rbd:restore-it/web-1-restored-" + disk);
            Path back = dir.resolve("rbd-" + disk + ".raw");
            exec(
                    "rbd",
                    "--conf",
                    ceph.confFile().toString(),
                    "export",
                    "restore-it/web-1-restored-" + disk,
                    back.toString());
            assertThat(Restorer.sha256(back))
                    .isEqualTo(shas.get(2).get(disk))
                    .isEqualTo(d.path("sha256").asText());
        }
        // an existing image is never overwritten
        assertThat(restoreFails(
                        "--vm",
                        VM,
                        "--disk",
                        "sd0",
                        "--out",
                        "rbd:restore-it/web-1-restored-sd0:conf=" + ceph.confFile()))
                .isEqualTo(2);
        assertThat(std.err()).contains("rbd:restore-it/web-1-restored-sd0");
    }

    private static String exec(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), out).isZero();
        return out;
    }
}
