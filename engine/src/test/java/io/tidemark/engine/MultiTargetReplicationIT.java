package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.TargetSpec;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.fault.FaultyHttpProxy;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.DemoGuest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One restore point fans out to two real targets — S3 (S3Proxy behind a fault-injecting proxy) and
 * Ceph RADOS — each in its own consumer group: while S3 answers only 503 SlowDown, Ceph keeps
 * receiving points and the S3 replication gives up after its retry deadline (dead-lettered, not
 * blocking); once S3 is back, it catches up, and the reconciliation ships the dead-lettered point
 * too. Either target alone restores bit-identically.
 */
class MultiTargetReplicationIT {

    private static final String VM = "app-vm";
    private static final long DISK = 32L << 20;

    @TempDir
    Path dir;

    @Test
    void eachTargetProgressesOnItsOwnAndEitherAloneRestoresBitIdentically() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        try (CephCluster ceph = CephCluster.start(dir.resolve("ceph"));
                EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                FaultyHttpProxy proxy = FaultyHttpProxy.to(s3.endpoint())
                        .faults(FaultyHttpProxy.Fault.SLOW_DOWN)
                        .faultRate(0)
                        .build()
                        .start();
                QemuVm vm = QemuVm.start(qmpDir, VM, DISK)) {
            ceph.createPool("tidemark");
            s3.createBucket("offsite");
            String disk = vm.diskIds().get(0);
            DemoGuest guest = new DemoGuest(vm, Map.of(disk, DISK), 7);
            for (int i = 0; i < 4; i++) {
                guest.write(disk, (long) i * 5 << 20, 1 << 20, 0x40 + i);
            }
            Path policies = Files.createDirectories(dir.resolve("policies"));
            Files.writeString(
                    policies.resolve("app.yaml"),
                    """
                    name: app
                    vms: {names: [%s]}
                    schedule: {interval: 10s}
                    rpo: 5m
                    targets: [s3, ceph]
                    """
                            .formatted(VM));
            Path secrets = Files.createDirectories(dir.resolve("secrets"));
            Files.writeString(secrets.resolve("s3.access"), s3.accessKey());
            Files.writeString(secrets.resolve("s3.secret"), s3.secretKey());
            Files.writeString(secrets.resolve("ceph.key"), ceph.adminKey());
            Path configFile = dir.resolve("tidemark.yaml");
            Files.writeString(
                    configFile,
                    """
                    host: hv1
                    data: %s
                    qmpDir: %s
                    policies: %s
                    metrics: 127.0.0.1:0
                    targets:
                      s3:
                        type: s3
                        endpoint: %s
                        region: us-east-1
                        bucket: offsite
                        prefix: tm
                        pathStyle: true
                        accessKeyFile: %s
                        secretKeyFile: %s
                        retryDeadline: 3s
                      ceph:
                        type: rados
                        monHost: %s
                        clientName: client.admin
                        keyFile: %s
                        pool: tidemark
                        prefix: tm
                    """
                            .formatted(
                                    dir.resolve("data"),
                                    qmpDir,
                                    policies,
                                    proxy.endpoint(),
                                    secrets.resolve("s3.access"),
                                    secrets.resolve("s3.secret"),
                                    ceph.monHost(),
                                    secrets.resolve("ceph.key")));
            EngineConfig config = EngineConfig.load(configFile);

            List<ReplicaCommitted> replicated = new CopyOnWriteArrayList<>();
            List<JobFailed> failed = new CopyOnWriteArrayList<>();
            Manifest first;
            Manifest duringOutage;
            Manifest afterOutage;
            try (Engine engine = Engine.start(config, guest, Clock.systemUTC());
                    EventBus.Subscription watch = engine.bus()
                            .subscribe("it-watch", List.of(Topics.REPLICATION, Topics.JOB_STATUS), (t, e) -> {
                                if (e.payload() instanceof ReplicaCommitted r) {
                                    replicated.add(r);
                                } else if (e.payload() instanceof JobFailed f) {
                                    failed.add(f);
                                }
                            })) {
                await().atMost(Duration.ofSeconds(90)).until(() -> onBoth(replicated) != null);
                first = engine.repository().manifest(VM, onBoth(replicated)).orElseThrow();

                proxy.faultRate(1.0); // S3 now answers every request with 503 SlowDown
                guest.scatter(4);
                await().atMost(Duration.ofSeconds(90)).until(() -> replicated.stream()
                        .anyMatch(r ->
                                r.target().equals("ceph") && !r.restorePointId().equals(first.id())));
                String cephOnly = replicated.stream()
                        .filter(r ->
                                r.target().equals("ceph") && !r.restorePointId().equals(first.id()))
                        .findFirst()
                        .orElseThrow()
                        .restorePointId();
                duringOutage = engine.repository().manifest(VM, cephOnly).orElseThrow();
                // the S3 replication of that point gives up after its 3 s deadline instead of blocking
                await().atMost(Duration.ofSeconds(60)).until(() -> failed.stream()
                        .anyMatch(
                                f -> f.stage().equals("replicate") && f.error().startsWith("s3: ")));

                proxy.faultRate(0);
                guest.scatter(4);
                await().atMost(Duration.ofSeconds(90)).until(() -> replicated.stream()
                        .anyMatch(r ->
                                r.target().equals("s3") && r.restorePointId().compareTo(cephOnly) > 0));
                String caughtUp = replicated.stream()
                        .filter(r ->
                                r.target().equals("s3") && r.restorePointId().compareTo(cephOnly) > 0)
                        .findFirst()
                        .orElseThrow()
                        .restorePointId();
                afterOutage = engine.repository().manifest(VM, caughtUp).orElseThrow();
                await().atMost(Duration.ofSeconds(60)).until(() -> replicated.stream()
                        .anyMatch(r ->
                                r.target().equals("ceph") && r.restorePointId().equals(caughtUp)));
                // the point dead-lettered during the outage: the reconciliation ships it, no operator needed
                await().atMost(Duration.ofSeconds(120)).until(() -> replicated.stream()
                        .anyMatch(r ->
                                r.target().equals("s3") && r.restorePointId().equals(cephOnly)));
            }

            Map<String, ObjectTarget> targets = TargetSpec.openAll(config.targets());
            try {
                Repository fromS3 = Repository.open(targets.get("s3"));
                Repository fromCeph = Repository.open(targets.get("ceph"));
                assertThat(fromS3.hasManifest(VM, duringOutage.id())).isTrue();
                assertThat(fromCeph.hasManifest(VM, duringOutage.id())).isTrue();
                for (Manifest m : List.of(first, afterOutage)) {
                    assertThat(restore(fromS3, m))
                            .isEqualTo(guest.at(m.capturedAt()).sha256().get(disk));
                    assertThat(restore(fromCeph, m))
                            .isEqualTo(guest.at(m.capturedAt()).sha256().get(disk));
                }
                for (Repository from : List.of(fromS3, fromCeph)) {
                    assertThat(restore(from, duringOutage))
                            .isEqualTo(
                                    guest.at(duringOutage.capturedAt()).sha256().get(disk));
                }
            } finally {
                targets.values().forEach(ObjectTarget::close);
            }
        }
    }

    /** A restore point both targets committed, if there is one. */
    private static String onBoth(List<ReplicaCommitted> replicated) {
        return replicated.stream()
                .filter(r -> r.target().equals("s3"))
                .map(ReplicaCommitted::restorePointId)
                .filter(id -> replicated.stream()
                        .anyMatch(o ->
                                o.target().equals("ceph") && o.restorePointId().equals(id)))
                .findFirst()
                .orElse(null);
    }

    private String restore(Repository from, Manifest m) {
        Manifest there = from.manifest(VM, m.id()).orElseThrow();
        String disk = there.disks().get(0).name();
        return new Restorer(from, 4)
                .restoreDisk(
                        there,
                        disk,
                        dir.resolve(m.id() + "-" + from.describe().hashCode() + ".raw"),
                        Restorer.Progress.NONE)
                .sha256();
    }
}
