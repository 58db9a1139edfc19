package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two worker hosts share one primary repository on S3 ({@code repository:}, ADR 13): each host a
 * {@code tidemark run --roles worker} process of its own with its own QEMU VM, and a third process
 * (scheduler and replicator) on neither host ships both hosts' points from the shared primary to an
 * offsite directory. The points of both VMs are committed in the primary and replicated, restore
 * bit-identically (against the disk model the test keeps, not against what the engine read), the
 * CLI's {@code --from local} reads the shared primary with the engine config, and a worker killed
 * with SIGKILL and restarted on its own data goes on.
 */
class SharedPrimaryIT {

    private static final String DISK = "sd0";
    private static final long SIZE = 16L << 20;

    @TempDir
    Path dir;

    @Test
    void twoWorkerHostsWriteOneSharedPrimaryThatAReplicatorElsewhereShipsAndRestoresBitIdentically() throws Exception {
        Path qmpA = Files.createDirectories(dir.resolve("qa"));
        Path qmpB = Files.createDirectories(dir.resolve("qb"));
        Path offsite = Files.createDirectories(dir.resolve("offsite"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("p.yaml"),
                "name: every-10s\nvms:\n  names: [vma, vmb]\nschedule:\n  interval: 10s\nrpo: 1h\n"
                        + "targets: [offsite]\n");
        List<Process> processes = new ArrayList<>();
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                EmbeddedKafka kafka = EmbeddedKafka.start(dir.resolve("kafka"), 0, 0);
                QemuVm vmA = QemuVm.start(qmpA, "vma", SIZE);
                QemuVm vmB = QemuVm.start(qmpB, "vmb", SIZE)) {
            s3.createBucket("fleet");
            Path access = Files.writeString(dir.resolve("s3.access"), s3.accessKey());
            Path secret = Files.writeString(dir.resolve("s3.secret"), s3.secretKey());
            // written before any worker runs: every point of these VMs holds exactly this
            vmA.write(DISK, 1 << 20, 256 << 10, 0x5a);
            vmB.write(DISK, 3 << 20, 256 << 10, 0xa5);
            String shaA = vmA.model(DISK).sha256();
            String shaB = vmB.model(DISK).sha256();

            String common = "kafka: " + kafka.bootstrapServers() + "\npolicies: " + policies
                    + "\nmetrics: \"127.0.0.1:0\"\n"
                    + """
                    repository:
                      type: s3
                      endpoint: %s
                      bucket: fleet
                      prefix: primary
                      pathStyle: true
                      accessKeyFile: %s
                      secretKeyFile: %s
                    targets:
                      offsite:
                        type: file
                        path: %s
                    """
                            .formatted(s3.endpoint(), access, secret, offsite);
            Path configA = config(
                    "a", common + "host: hwa\ndata: " + dir.resolve("a") + "\nqmpDir: " + qmpA + "\nroles: [worker]\n");
            Path configB = config(
                    "b", common + "host: hwb\ndata: " + dir.resolve("b") + "\nqmpDir: " + qmpB + "\nroles: [worker]\n");
            Path configControl = config(
                    "control",
                    common + "host: control\ndata: " + dir.resolve("control") + "\nroles: [scheduler, replicator]\n");
            // the three open (and the first creates) the shared repository at the same time
            Process workerA = start("a", configA);
            Process workerB = start("b", configB);
            Process control = start("control", configControl);
            processes.addAll(List.of(workerA, workerB, control));

            EngineConfig engine = EngineConfig.load(configA);
            Map<String, Manifest> checked = new ConcurrentHashMap<>();
            try (ObjectTarget primaryTarget = Targets.primary(engine);
                    FileObjectTarget offsiteTarget = new FileObjectTarget(offsite)) {
                await().atMost(Duration.ofSeconds(240))
                        .pollInterval(Duration.ofSeconds(1))
                        .failFast(() -> assertThat(workerA.isAlive() && workerB.isAlive() && control.isAlive())
                                .as("a:%n%s%nb:%n%s%ncontrol:%n%s", log("a"), log("b"), log("control"))
                                .isTrue())
                        .conditionEvaluationListener(c -> {
                            if (c.getRemainingTimeInMS() < 1000) {
                                System.out.println(
                                        "a:\n" + log("a") + "\nb:\n" + log("b") + "\ncontrol:\n" + log("control"));
                            }
                        })
                        .until(() -> replicated(primaryTarget, offsiteTarget, "vma", Instant.EPOCH)
                                        .isPresent()
                                && replicated(primaryTarget, offsiteTarget, "vmb", Instant.EPOCH)
                                        .isPresent());
                Repository primary = Repository.open(primaryTarget);
                Repository replica = Repository.open(offsiteTarget);
                Manifest a = replicated(primaryTarget, offsiteTarget, "vma", Instant.EPOCH)
                        .orElseThrow();
                Manifest b = replicated(primaryTarget, offsiteTarget, "vmb", Instant.EPOCH)
                        .orElseThrow();
                assertThat(a.host())
                        .as("vma's point, written by the worker of its host")
                        .isEqualTo("hwa");
                assertThat(b.host()).isEqualTo("hwb");
                assertThat(restore(replica, a)).as("vma from offsite").isEqualTo(shaA);
                assertThat(restore(replica, b)).as("vmb from offsite").isEqualTo(shaB);
                assertThat(restore(primary, a))
                        .as("vma from the shared primary")
                        .isEqualTo(shaA);
                // the CLI's 'local' is the configured primary: host a's config restores host b's VM
                Path out = dir.resolve("cli-restore.raw");
                assertThat(Main.execute(
                                "restore",
                                "--config",
                                configA.toString(),
                                "--from",
                                "local",
                                "--vm",
                                "vmb",
                                "--point",
                                b.id(),
                                "--disk",
                                DISK,
                                "--out",
                                out.toString(),
                                "--json"))
                        .isZero();
                assertThat(Digest.sha256(Files.readAllBytes(out)).hex()).isEqualTo(shaB);
                checked.put("a", a);

                // host a's worker dies (SIGKILL); its VM changes meanwhile; it restarts on its own data
                workerA.destroyForcibly();
                assertThat(workerA.waitFor(60, TimeUnit.SECONDS)).isTrue();
                Instant killed = Instant.now();
                vmA.write(DISK, 5 << 20, 128 << 10, 0x33);
                String shaA2 = vmA.model(DISK).sha256();
                Process restarted = start("a2", configA);
                processes.add(restarted);
                await().atMost(Duration.ofSeconds(180))
                        .pollInterval(Duration.ofSeconds(1))
                        .failFast(() -> assertThat(restarted.isAlive())
                                .as("a2:%n%s", log("a2"))
                                .isTrue())
                        .until(() -> replicated(primaryTarget, offsiteTarget, "vma", killed)
                                .isPresent());
                Manifest a2 =
                        replicated(primaryTarget, offsiteTarget, "vma", killed).orElseThrow();
                assertThat(restore(replica, a2))
                        .as("vma after the restart, from offsite")
                        .isEqualTo(shaA2);
                // host b went on all along, its points are still there and the earlier ones unchanged
                assertThat(primary.manifests("vmb")).hasSizeGreaterThan(1);
                assertThat(restore(replica, b)).isEqualTo(shaB);
                List<Manifest> all = new ArrayList<>(primary.manifests("vma"));
                all.addAll(primary.manifests("vmb"));
                assertThat(all.stream().map(Manifest::jobId).distinct().count())
                        .as("one point per job in the shared primary")
                        .isEqualTo(all.size());
                assertThat(log("a") + log("a2") + log("b") + log("control")).doesNotContain(s3.secretKey());
            }
        } finally {
            for (Process p : processes) {
                p.destroyForcibly();
                p.waitFor(60, TimeUnit.SECONDS);
            }
        }
    }

    /** The newest point of {@code vm} captured after {@code after} that both the primary and offsite hold. */
    private static Optional<Manifest> replicated(ObjectTarget primary, ObjectTarget offsite, String vm, Instant after) {
        if (!primary.exists(ObjectKeys.CONFIG) || !offsite.exists(ObjectKeys.CONFIG)) {
            return Optional.empty();
        }
        Repository replica = Repository.open(offsite);
        List<Manifest> points = Repository.open(primary).manifests(vm);
        for (int i = points.size() - 1; i >= 0; i--) {
            Manifest m = points.get(i);
            if (m.capturedAt().isAfter(after) && replica.hasManifest(vm, m.id())) {
                return Optional.of(m);
            }
        }
        return Optional.empty();
    }

    private String restore(Repository from, Manifest m) {
        Manifest there = from.manifest(m.vm(), m.id()).orElseThrow();
        return new Restorer(from, 4)
                .restoreDisk(
                        there,
                        DISK,
                        dir.resolve(m.id() + "-" + Math.abs(from.describe().hashCode()) + ".raw"),
                        Restorer.Progress.NONE)
                .sha256();
    }

    private Path config(String name, String yaml) throws IOException {
        return Files.writeString(dir.resolve(name + ".yaml"), yaml);
    }

    private String log(String name) {
        try {
            Path log = dir.resolve(name + ".log");
            return Files.exists(log) ? Files.readString(log) : "";
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    private Process start(String name, Path config) throws IOException {
        return new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx384m",
                        // C1 only and the serial GC, as the soak's and the topology's engines: a short-lived engine
                        // JVM then starts in far less CPU (13-28 s instead of 37-40 s to 'running' at load 30-40)
                        "-XX:+UseSerialGC",
                        "-XX:TieredStopAtLevel=1",
                        "-cp",
                        System.getProperty("java.class.path"),
                        Main.class.getName(),
                        "run",
                        "--config",
                        config.toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve(name + ".log").toFile())
                .start();
    }
}
