package io.tidemark.demo;

import io.tidemark.core.Human;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.files.FileTrees;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.Engine;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Passphrase;
import io.tidemark.repository.PassphraseSource;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.DemoGuest;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The whole flow on real parts in one process, used by {@code tidemark demo} and by the end-to-end
 * test: a QEMU VM (TCG) whose guest writes known data, an embedded Kafka broker, S3Proxy on
 * loopback, a policy firing every 10 s, the engine ({@code tidemark run}'s wiring), then a restore
 * from S3 alone after the local repository is deleted.
 */
final class DemoScenario {

    static final String VM = "demo-vm";
    static final String BUCKET = "tidemark-demo";
    static final String TARGET = "offsite";
    static final long DISK_SIZE = 64L << 20;

    /** One restore point as the demo saw it. */
    record Point(Manifest manifest, DemoGuest.Moment moment, Duration captureToReplica) {}

    /** What the demo did. */
    record Outcome(List<Point> points, Map<String, Map<String, Restorer.Result>> restoredFromS3, DemoGuest guest) {
        Point latest() {
            return points.get(points.size() - 1);
        }

        /**
         * Whether {@code p} has disks and every one, restored from S3, equals the disk at its snapshot
         * moment (a point with no disks restored matches nothing).
         */
        boolean matches(Point p) {
            Map<String, Restorer.Result> restored =
                    restoredFromS3.get(p.manifest().id());
            return !restored.isEmpty()
                    && restored.entrySet().stream().allMatch(e -> e.getValue()
                            .sha256()
                            .equals(p.moment().sha256().get(e.getKey())));
        }
    }

    /** Things to do while the engine runs (the test checks idempotency here); null for none. */
    interface WhileRunning {
        void accept(Engine engine, DemoGuest guest, QemuVm vm);
    }

    private final Path dir;
    private final PrintStream out;
    private final int points;
    /** Encrypt the repositories under this passphrase; null for none. */
    private String passphrase;
    /** PBKDF2 iterations of the demo's key object: lower than the default, the key is throwaway. */
    private static final int DEMO_KDF_ITERATIONS = 100_000;

    DemoScenario(Path dir, PrintStream out, int points) {
        this.dir = dir;
        this.out = out;
        this.points = points;
    }

    /** Runs the demo with encrypted repositories: the passphrase goes to the engine in a 0600 file. */
    DemoScenario encrypted(String passphrase) {
        this.passphrase = passphrase;
        return this;
    }

    Outcome run(WhileRunning extra) throws IOException, InterruptedException {
        FileTrees.delete(dir);
        Files.createDirectories(dir);
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        try (EmbeddedS3 s3 = EmbeddedS3.builder()
                        .filesystem(Files.createDirectories(dir.resolve("s3")))
                        .build()
                        .start();
                QemuVm vm = QemuVm.start(qmpDir, VM, DISK_SIZE)) {
            s3.createBucket(BUCKET);
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK_SIZE), 42);
            out.printf(
                    "started: QEMU VM '%s' (TCG, %s disk '%s'), S3Proxy on %s%n",
                    VM, Human.bytes(DISK_SIZE), disk, s3.endpoint());
            // the guest's data before the first backup: 8 MiB of patterns, the rest never written
            for (int i = 0; i < 8; i++) {
                guest.write(disk, (long) i * 7 << 20, 1 << 20, 0x10 + i);
            }

            Path policies = Files.createDirectories(dir.resolve("policies"));
            Files.writeString(
                    policies.resolve("demo.yaml"),
                    """
                    # every 10 s, replicate to the offsite S3 bucket
                    name: demo
                    vms:
                      names: [%s]
                    schedule:
                      interval: 10s
                    rpo: 1m
                    targets: [%s]
                    """
                            .formatted(VM, TARGET));
            Path secrets = Files.createDirectories(dir.resolve("secrets"));
            Path accessKey = secret(secrets.resolve("s3.access"), s3.accessKey());
            Path secretKey = secret(secrets.resolve("s3.secret"), s3.secretKey());
            S3TargetSpec offsite = S3TargetSpec.builder()
                    .endpoint(s3.endpoint())
                    .region(s3.region())
                    .bucket(BUCKET)
                    .prefix("demo")
                    .pathStyle(true)
                    .accessKeyFile(accessKey.toString())
                    .secretKeyFile(secretKey.toString())
                    .build();
            EngineConfig.Builder settings = EngineConfig.builder()
                    .host("demo-host")
                    .data(dir.resolve("data"))
                    .qmpDir(qmpDir)
                    .policies(policies)
                    .targets(Map.of(TARGET, offsite))
                    .metrics("127.0.0.1:0");
            if (passphrase != null) {
                Path passphraseFile = secret(secrets.resolve("passphrase"), passphrase);
                settings.encryption(new EngineConfig.EncryptionConfig(passphraseFile, null, DEMO_KDF_ITERATIONS));
            }
            EngineConfig config = settings.build();
            out.printf(
                    "engine: embedded Kafka, primary repository %s, policy 'demo' every 10 s → s3://%s/demo%n",
                    config.data().resolve("repo"), BUCKET);

            List<Point> seen = new ArrayList<>();
            BlockingQueue<ReplicaCommitted> replicated = new LinkedBlockingQueue<>();
            try (Engine engine = Engine.start(config, guest, Clock.systemUTC());
                    EventBus.Subscription watch = engine.bus()
                            .subscribe("demo-watch", List.of(Topics.REPLICATION), (t, e) -> {
                                if (e.payload() instanceof ReplicaCommitted r) {
                                    replicated.add(r);
                                }
                            })) {
                while (seen.size() < points) {
                    ReplicaCommitted r = replicated.poll(90, TimeUnit.SECONDS);
                    if (r == null) {
                        throw new RetriableException("no restore point was replicated within 90 s; see the log above");
                    }
                    Manifest m =
                            engine.repository().manifest(VM, r.restorePointId()).orElseThrow();
                    if (seen.stream().anyMatch(p -> p.manifest().id().equals(m.id()))) {
                        continue;
                    }
                    Point p = new Point(m, guest.at(m.capturedAt()), Duration.between(m.capturedAt(), Instant.now()));
                    seen.add(p);
                    out.printf(
                            "  #%d %s  %-11s read %9s of %s  new %9s  captured → on S3 in %.1f s%n",
                            seen.size(),
                            m.id(),
                            m.incremental() ? "incremental" : "full",
                            Human.bytes(m.bytesRead()),
                            Human.bytes(m.sizeBytes()),
                            Human.bytes(m.bytesNew()),
                            p.captureToReplica().toMillis() / 1e3);
                    if (seen.size() == 1 && extra != null) {
                        extra.accept(engine, guest, vm);
                    }
                    guest.scatter(4); // the guest's work until the next snapshot
                }
            }
            out.println("engine stopped; deleting the local repository "
                    + config.data().resolve("repo"));
            FileTrees.delete(config.data().resolve("repo"));

            Map<String, Map<String, Restorer.Result>> restored = new java.util.LinkedHashMap<>();
            try (ObjectTarget target =
                    S3ObjectTarget.create(offsite, S3Credentials.of(s3.accessKey(), s3.secretKey()))) {
                Repository fromS3 = Repository.open(
                        target,
                        passphrase == null
                                ? PassphraseSource.NONE
                                : PassphraseSource.of(Passphrase.of(passphrase, "the demo")));
                for (Point p : seen) {
                    String id = p.manifest().id();
                    Manifest m = fromS3.manifest(VM, id)
                            .orElseThrow(() -> new PermanentException("restore point " + id + " is not on S3"));
                    Map<String, Restorer.Result> disks = new java.util.LinkedHashMap<>();
                    for (var d : m.disks()) {
                        Path image = dir.resolve("restored-" + id + "-" + d.name() + ".raw");
                        disks.put(
                                d.name(),
                                new Restorer(fromS3, 8).restoreDisk(m, d.name(), image, Restorer.Progress.NONE));
                    }
                    restored.put(id, disks);
                }
            }
            return new Outcome(seen, restored, guest);
        }
    }

    private static Path secret(Path file, String value) throws IOException {
        Files.writeString(file, value);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        return file;
    }
}
