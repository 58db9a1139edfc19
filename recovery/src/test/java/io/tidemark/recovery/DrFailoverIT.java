package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.s3.S3Credentials;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.testkit.s3.EmbeddedS3;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.qmp.QmpClient;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A two-group DR plan failed over from an S3 target (S3Proxy) into real QEMU processes, and one VM
 * failed back home, by the use cases themselves ({@link Failover}, {@link Failback}, {@link Drill}).
 * The source VMs are real QEMU VMs (no OS) backed up by the real worker; the DR VMs are started by
 * the failover under test. Checks: the dry run touches nothing; the restored disks equal the chosen
 * points by an independent checksum of the source VMs' disks (consistent-with picks the older
 * common firing); the second group starts only after the first runs; a re-run restarts nothing;
 * failback ships only the changed chunk and the home copy equals the DR disk.
 */
@org.junit.jupiter.api.extension.ExtendWith(io.tidemark.testkit.ceph.CephClusterExtension.class)
class DrFailoverIT {

    private static final long DISK = 32L << 20;
    private static final List<String> VMS = List.of("db-1", "queue-1", "web-1");

    @TempDir
    Path dir;

    @Test
    void failsOverInBootOrderFromConsistentPointsAndFailsBackOnlyTheChanges() throws Exception {
        Path drDir = dir.resolve("dr");
        DrSite site = new DrSite(drDir);
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("drsite");
            Map<String, String> expectedSha = new HashMap<>();
            Map<String, String> expectedPoint = new HashMap<>();
            try (ObjectTarget target = target(s3)) {
                backUpSources(target, expectedSha, expectedPoint);
            }
            Path planFile = dir.resolve("plan.yaml");
            Files.writeString(
                    planFile,
                    """
                    site: dr-test
                    source: offsite
                    work-dir: %s
                    home-dir: %s
                    groups:
                      - name: data
                        vms:
                          - {name: db-1, memory: 64}
                          - {name: queue-1, memory: 64, consistent-with: [db-1]}
                      - name: apps
                        vms:
                          - {name: web-1, memory: 64}
                    """
                            .formatted(drDir, dir.resolve("home")));
            RecoveryPlan plan = new RecoveryPlanParser().parseFile(planFile);
            try (ObjectTarget target = target(s3)) {
                Repository repo = Repository.open(target);
                Failover failover = new Failover(repo, site, 8, Clock.systemUTC(), RecoveryProgress.NONE);
                try {
                    Map<String, Manifest> points = failover.points(plan);

                    // the dry run says what it would do, touches nothing
                    Failover.DryRun dry = failover.dryRun(plan, points);
                    assertThat(dry.ok()).as("%s", dry.problems()).isTrue();
                    assertThat(dry.vms()).extracting(Failover.PlannedVm::vm).containsExactlyInAnyOrderElementsOf(VMS);
                    for (Failover.PlannedVm vm : dry.vms()) {
                        assertThat(vm.point().id()).isEqualTo(expectedPoint.get(vm.vm()));
                    }
                    assertThat(drDir).doesNotExist();
                    assertThat(qemuProcessesUnder(drDir)).isEmpty();

                    // failover
                    List<Failover.VmResult> results = failover.run(plan, points, System.nanoTime());
                    Map<String, Failover.VmResult> byVm = new HashMap<>();
                    results.forEach(r -> byVm.put(r.vm(), r));
                    assertThat(byVm).containsOnlyKeys(VMS);
                    assertThat(results).extracting(Failover.VmResult::vm).containsExactly("db-1", "queue-1", "web-1");
                    for (String vm : VMS) {
                        Failover.VmResult r = byVm.get(vm);
                        assertThat(r.state()).isEqualTo(Failover.State.STARTED);
                        assertThat(r.point().id()).isEqualTo(expectedPoint.get(vm));
                        Failover.Timing t = r.timing().orElseThrow();
                        assertThat(t.rpo()).isPositive();
                        assertThat(t.rto()).isPositive();
                        assertThat(site.status(vm)).contains("running");
                        assertThat(Restorer.sha256(site.disk(vm, "sd0")))
                                .as("DR disk of %s equals its point", vm)
                                .isEqualTo(expectedSha.get(vm));
                        assertThat(r.restored()).singleElement().satisfies(d -> assertThat(d.sha256())
                                .isEqualTo(expectedSha.get(vm)));
                    }
                    Instant groupOneRunning = max(
                            timing(byVm, "db-1").runningAt(),
                            timing(byVm, "queue-1").runningAt());
                    assertThat(timing(byVm, "web-1").launchedAt()).isAfterOrEqualTo(groupOneRunning);
                    // and by the processes themselves: web-1's QEMU started after both of the first group
                    Instant webProcess = processStart("web-1", site);
                    assertThat(webProcess).isAfterOrEqualTo(processStart("db-1", site));
                    assertThat(webProcess).isAfterOrEqualTo(processStart("queue-1", site));
                    assertThat(timing(byVm, "web-1").rto())
                            .isGreaterThanOrEqualTo(timing(byVm, "db-1").rto());

                    // a re-run reports the running VMs and restarts nothing
                    Map<String, Long> pids = new HashMap<>();
                    VMS.forEach(vm -> pids.put(vm, site.pid(vm).orElseThrow()));
                    List<Failover.VmResult> again = failover.run(plan, points, System.nanoTime());
                    assertThat(again).allSatisfy(r -> {
                        assertThat(r.state()).isEqualTo(Failover.State.ALREADY_RUNNING);
                        assertThat(r.timing()).isEmpty();
                        assertThat(r.restored()).isEmpty();
                    });
                    VMS.forEach(vm -> assertThat(site.pid(vm)).contains(pids.get(vm)));

                    // the DR site writes a little; failback ships about that much and home equals the DR disk
                    try (QmpClient qmp = QmpClient.connect(site.qmp("db-1"))) {
                        qmp.execute(
                                "human-monitor-command",
                                QmpClient.args().put("command-line", "qemu-io -d sd0 \"write -P 0x5a 8M 64k\""));
                    }
                    String drSha = Restorer.sha256(site.disk("db-1", "sd0"));
                    assertThat(drSha).isNotEqualTo(expectedSha.get("db-1"));
                    Path homeDir = Failback.homeDir(plan, Optional.empty());
                    List<String> running = Failback.running(plan, site, Optional.of(List.of("db-1")));
                    assertThat(running).containsExactly("db-1");
                    Failback.VmResult back = new Failback(repo, site, 8, Clock.systemUTC(), RecoveryProgress.NONE)
                            .run(plan, running, homeDir)
                            .get(0);
                    long chunk = RepositoryConfig.defaults().chunkSize();
                    assertThat(back.point().sizeBytes()).isEqualTo(DISK);
                    // the whole disk is read (holes of the sparse raw file are skipped as zeros)
                    assertThat(back.point().bytesRead())
                            .isGreaterThanOrEqualTo(back.point().bytesNew());
                    assertThat(back.point().bytesNew())
                            .as("only the chunk written at the DR site is new")
                            .isPositive()
                            .isLessThanOrEqualTo(chunk);
                    Path home = dir.resolve("home").resolve("db-1").resolve("sd0.raw");
                    assertThat(Restorer.sha256(home)).isEqualTo(drSha);
                    assertThat(back.disks()).singleElement().satisfies(d -> assertThat(d.sha256())
                            .isEqualTo(drSha));
                    Manifest m = Repository.open(target)
                            .manifest("db-1", back.point().id())
                            .orElseThrow();
                    assertThat(m.trigger().kind()).isEqualTo(TriggerKind.FAILBACK);
                    assertThat(m.trigger().attributes()).containsEntry("site", "dr-test");

                    // a drill from the same S3 target: not an ext file system, so the chunk digests are checked
                    Drill.DrillResult drill = new Drill(Clock.systemUTC(), RecoveryProgress.NONE)
                            .run(
                                    repo,
                                    new DrillLog(target),
                                    new Drill.Request(
                                            "web-1",
                                            "offsite",
                                            Optional.empty(),
                                            dir.resolve("scratch"),
                                            8,
                                            Optional.empty(),
                                            Duration.ofMinutes(5)));
                    DrillRecord d = drill.record();
                    assertThat(d.restorePoint()).isEqualTo(expectedPoint.get("web-1"));
                    assertThat(d.location()).isEqualTo("offsite");
                    assertThat(d.check()).isEqualTo(DiskCheck.DIGESTS);
                    assertThat(d.passed()).isTrue();
                } finally {
                    VMS.forEach(site::stop);
                }
            }
            assertThat(qemuProcessesUnder(drDir)).isEmpty();
        }
    }

    /**
     * {@code dr-host.disks.format: qcow2}: the DR VM runs on a qcow2 file (QEMU's own block node
     * says so), the guest's disk holds exactly the point's bytes, no partial file is left, and
     * failback reads the qcow2-backed VM and brings home what the DR site wrote.
     */
    @Test
    void failsOverOntoQcow2DisksAndFailsBackFromThem() throws Exception {
        Path drDir = dir.resolve("dr");
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("drsite");
            Map<String, String> expectedSha = new HashMap<>();
            Map<String, String> expectedPoint = new HashMap<>();
            try (ObjectTarget target = target(s3)) {
                backUpSources(target, expectedSha, expectedPoint);
            }
            RecoveryPlan plan =
                    web1Plan(drDir, String.join("\n", "hypervisor: qmp", "accel: tcg", "disks: {format: qcow2}"));
            DrSite site = DrSite.of(plan);
            try (ObjectTarget target = target(s3)) {
                Repository repo = Repository.open(target);
                Failover failover = new Failover(repo, site, 8, Clock.systemUTC(), RecoveryProgress.NONE);
                try {
                    Map<String, Manifest> points = failover.points(plan);
                    assertThat(failover.dryRun(plan, points).problems()).isEmpty();

                    Failover.VmResult r =
                            failover.run(plan, points, System.nanoTime()).get(0);

                    Path disk = site.disk("web-1", "sd0");
                    assertThat(disk).isEqualTo(drDir.toAbsolutePath().resolve("web-1/sd0.qcow2"));
                    assertThat(r.disks()).containsExactly(disk);
                    assertThat(r.point().id()).isEqualTo(expectedPoint.get("web-1"));
                    assertThat(site.status("web-1")).contains("running");
                    assertThat(qemuImg("info", "-U", "--output=json", disk.toString()))
                            .contains("\"format\": \"qcow2\"");
                    assertThat(disk.resolveSibling("sd0.qcow2.partial")).doesNotExist();
                    try (QmpClient qmp = QmpClient.connect(site.qmp("web-1"))) {
                        com.fasterxml.jackson.databind.JsonNode node = null;
                        for (com.fasterxml.jackson.databind.JsonNode n : qmp.execute("query-named-block-nodes")) {
                            if (n.path("node-name").asText().equals("sd0-disk")) {
                                node = n;
                            }
                        }
                        assertThat(node).as("the guest's sd0 block node").isNotNull();
                        assertThat(node.path("drv").asText()).isEqualTo("qcow2");
                        assertThat(node.path("file").asText()).isEqualTo(disk.toString());
                    }
                    assertThat(guestSha(disk))
                            .as("the guest disk's bytes equal the point")
                            .isEqualTo(expectedSha.get("web-1"));
                    assertThat(r.restored()).singleElement().satisfies(d -> {
                        assertThat(d.sha256()).isEqualTo(expectedSha.get("web-1"));
                        assertThat(d.format()).isEqualTo("qcow2");
                    });

                    // failback captures the qcow2-backed VM and brings home what the DR site wrote
                    try (QmpClient qmp = QmpClient.connect(site.qmp("web-1"))) {
                        qmp.execute(
                                "human-monitor-command",
                                QmpClient.args().put("command-line", "qemu-io -d sd0 \"write -P 0x6b 8M 64k\""));
                        // qcow2 keeps its cluster tables in QEMU's cache: flush so a reader beside it sees the write
                        qmp.execute(
                                "human-monitor-command", QmpClient.args().put("command-line", "qemu-io -d sd0 flush"));
                    }
                    String drSha = guestSha(disk);
                    assertThat(drSha).isNotEqualTo(expectedSha.get("web-1"));
                    failBackWeb1(repo, site, plan, drSha);
                } finally {
                    site.stop("web-1");
                }
            }
            assertThat(qemuProcessesUnder(drDir)).isEmpty();
        }
    }

    /**
     * {@code dr-host.disks.format: rbd} on a real single-node Ceph: the DR VM runs on RBD image
     * {@code <pool>/web-1-sd0} (QEMU's own block node says so), opened with the key from the plan's
     * key file (the plan's ceph.conf names no keyring), the image's bytes equal the point, and
     * failback reads the RBD-backed VM and brings home what the DR site wrote.
     */
    @Test
    void failsOverOntoRbdImagesWithTheKeyFromAFile(io.tidemark.testkit.ceph.CephCluster ceph) throws Exception {
        String disks = rbdDisks(ceph, "dr-it");
        Path drDir = dir.resolve("dr");
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start()) {
            s3.createBucket("drsite");
            Map<String, String> expectedSha = new HashMap<>();
            Map<String, String> expectedPoint = new HashMap<>();
            try (ObjectTarget target = target(s3)) {
                backUpSources(target, expectedSha, expectedPoint);
            }
            RecoveryPlan plan = web1Plan(drDir, String.join("\n", "hypervisor: qmp", "accel: tcg", disks));
            DrSite site = DrSite.of(plan);
            try (ObjectTarget target = target(s3)) {
                Repository repo = Repository.open(target);
                Failover failover = new Failover(repo, site, 8, Clock.systemUTC(), RecoveryProgress.NONE);
                try {
                    Map<String, Manifest> points = failover.points(plan);
                    assertThat(failover.dryRun(plan, points).problems()).isEmpty();

                    Failover.VmResult r =
                            failover.run(plan, points, System.nanoTime()).get(0);

                    assertThat(r.point().id()).isEqualTo(expectedPoint.get("web-1"));
                    assertThat(r.disks()).extracting(Path::toString).containsExactly("rbd:dr-it/web-1-sd0");
                    assertThat(site.status("web-1")).contains("running");
                    try (QmpClient qmp = QmpClient.connect(site.qmp("web-1"))) {
                        Map<String, String> drv = new HashMap<>();
                        for (com.fasterxml.jackson.databind.JsonNode n : qmp.execute("query-named-block-nodes")) {
                            drv.put(n.path("node-name").asText(), n.path("drv").asText());
                        }
                        assertThat(drv).containsEntry("sd0-file", "rbd").containsEntry("sd0-disk", "raw");
                    }
                    assertThat(rbdSha(ceph, "dr-it/web-1-sd0"))
                            .as("the RBD image's bytes equal the point")
                            .isEqualTo(expectedSha.get("web-1"));
                    assertThat(r.restored()).singleElement().satisfies(d -> {
                        assertThat(d.sha256()).isEqualTo(expectedSha.get("web-1"));
                        assertThat(d.format()).isEqualTo("rbd");
                    });
                    assertThat(drDir.resolve("web-1")).doesNotExist();

                    // failback captures the RBD-backed VM and brings home what the DR site wrote
                    try (QmpClient qmp = QmpClient.connect(site.qmp("web-1"))) {
                        qmp.execute(
                                "human-monitor-command",
                                QmpClient.args().put("command-line", "qemu-io -d sd0 \"write -P 0x7c 8M 64k\""));
                        qmp.execute(
                                "human-monitor-command", QmpClient.args().put("command-line", "qemu-io -d sd0 flush"));
                    }
                    String drSha = rbdSha(ceph, "dr-it/web-1-sd0");
                    assertThat(drSha).isNotEqualTo(expectedSha.get("web-1"));
                    failBackWeb1(repo, site, plan, drSha);
                } finally {
                    site.stop("web-1");
                }
            }
            assertThat(qemuProcessesUnder(drDir)).isEmpty();
        }
    }

    /**
     * {@code format: rbd} on a libvirt DR host: the domain is defined with a network disk on RBD
     * image {@code <pool>/web-1-sd0} whose {@code <auth>} names an ephemeral, private libvirt secret
     * holding the key from the plan's key file; the domain runs and the image equals the point.
     */
    @Test
    void failsOverOntoRbdImagesAtALibvirtDrHostThroughALibvirtSecret(io.tidemark.testkit.ceph.CephCluster ceph)
            throws Exception {
        String disks = rbdDisks(ceph, "dr-lv");
        Path drDir = dir.resolve("dr");
        try (EmbeddedS3 s3 = EmbeddedS3.builder().build().start();
                io.tidemark.testkit.libvirt.Libvirtd lv =
                        io.tidemark.testkit.libvirt.Libvirtd.start(dir.resolve("lv"))) {
            s3.createBucket("drsite");
            Map<String, String> expectedSha = new HashMap<>();
            Map<String, String> expectedPoint = new HashMap<>();
            try (ObjectTarget target = target(s3)) {
                backUpSources(target, expectedSha, expectedPoint);
            }
            RecoveryPlan plan = web1Plan(
                    drDir, String.join("\n", "hypervisor: libvirt", "uri: \"" + lv.uri() + "\"", "accel: tcg", disks));
            DrSite site = DrSite.of(plan);
            try (ObjectTarget target = target(s3);
                    DrHypervisor host = DrHypervisor.of(plan, site)) {
                Repository repo = Repository.open(target);
                Failover failover = new Failover(repo, site, host, 8, Clock.systemUTC(), RecoveryProgress.NONE);
                try {
                    Map<String, Manifest> points = failover.points(plan);
                    Failover.VmResult r =
                            failover.run(plan, points, System.nanoTime()).get(0);

                    assertThat(host.status("web-1")).contains("running");
                    String uuid = DrDomainXml.cephSecret(
                                    plan.drHost().disks().rbd().orElseThrow())
                            .toString();
                    assertThat(lv.virsh("dumpxml", "web-1"))
                            .contains("protocol='rbd' name='dr-lv/web-1-sd0'")
                            .contains("<secret type='ceph' uuid='" + uuid + "'/>")
                            .doesNotContain(ceph.adminKey());
                    assertThat(lv.virsh("secret-dumpxml", uuid))
                            .contains("ephemeral='yes'")
                            .contains("private='yes'");
                    assertThat(rbdSha(ceph, "dr-lv/web-1-sd0"))
                            .as("the RBD image's bytes equal the point")
                            .isEqualTo(expectedSha.get("web-1"));
                    assertThat(r.restored()).singleElement().satisfies(d -> assertThat(d.sha256())
                            .isEqualTo(expectedSha.get("web-1")));
                } finally {
                    host.stop("web-1");
                }
            }
        }
    }

    private String rbdSha(io.tidemark.testkit.ceph.CephCluster ceph, String image) throws Exception {
        Path raw = dir.resolve("rbd-export.raw");
        Files.deleteIfExists(raw);
        run("rbd", "--conf", ceph.confFile().toString(), "export", image, raw.toString());
        try {
            return Restorer.sha256(raw);
        } finally {
            Files.delete(raw);
        }
    }

    /** The SHA-256 of what the guest sees on the qcow2 image (read beside the running VM). */
    private String guestSha(Path qcow2) throws Exception {
        Path raw = dir.resolve("guest-view.raw");
        Files.deleteIfExists(raw);
        qemuImg("convert", "-U", "-f", "qcow2", "-O", "raw", qcow2.toString(), raw.toString());
        try {
            return Restorer.sha256(raw);
        } finally {
            Files.delete(raw);
        }
    }

    private static String qemuImg(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        return run(cmd.toArray(String[]::new));
    }

    private static String run(String... command) throws Exception {
        List<String> cmd = List.of(command);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("%s: %s", cmd, out).isZero();
        return out;
    }

    private static Failover.Timing timing(Map<String, Failover.VmResult> byVm, String vm) {
        return byVm.get(vm).timing().orElseThrow();
    }

    /**
     * Firing 1 of every VM, then firing 2 of db-1 and web-1 only (queue-1's has not arrived): db-1
     * and queue-1 must come back from firing 1, web-1 from firing 2.
     */
    private void backUpSources(ObjectTarget target, Map<String, String> sha, Map<String, String> point)
            throws Exception {
        Path qmpDir = dir.resolve("qmp");
        Instant f1 = Instant.parse("2026-01-01T00:00:00Z");
        Instant f2 = f1.plusSeconds(900);
        try (QemuVm db = QemuVm.start(Files.createDirectories(qmpDir), "db-1", DISK);
                QemuVm queue = QemuVm.start(qmpDir, "queue-1", DISK);
                QemuVm web = QemuVm.start(qmpDir, "web-1", DISK);
                QmpHypervisor hv = new QmpHypervisor(qmpDir);
                BackupWorker worker = new BackupWorker(
                        "hv1",
                        hv,
                        Repository.openOrInit(target, RepositoryConfig.defaults()),
                        new RecordingEventBus(),
                        Clock.systemUTC(),
                        dir.resolve("work"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            db.write("sd0", 0, 1 << 20, 0x11);
            queue.write("sd0", 1 << 20, 1 << 20, 0x22);
            web.write("sd0", 2 << 20, 1 << 20, 0x33);
            for (QemuVm vm : List.of(db, queue, web)) {
                Manifest m = backup(worker, vm.name(), f1);
                sha.put(vm.name(), vm.model("sd0").sha256());
                point.put(vm.name(), m.id());
            }
            db.write("sd0", 4 << 20, 1 << 20, 0x44);
            web.write("sd0", 4 << 20, 1 << 20, 0x55);
            backup(worker, "db-1", f2); // newer, but queue-1 has no point of this firing
            Manifest w = backup(worker, "web-1", f2);
            sha.put("web-1", web.model("sd0").sha256());
            point.put("web-1", w.id());
        }
    }

    private static Manifest backup(BackupWorker worker, String vm, Instant firing) {
        return worker.backup(
                "p/" + vm + "/" + firing.toEpochMilli(),
                new SnapshotJob(vm, "hv1", "p", Trigger.schedule("p"), List.of(), firing));
    }

    private static ObjectTarget target(EmbeddedS3 s3) {
        S3TargetSpec spec = S3TargetSpec.builder()
                .endpoint(s3.endpoint())
                .region(s3.region())
                .bucket("drsite")
                .prefix("tm")
                .pathStyle(true)
                .build();
        return S3ObjectTarget.create(spec, S3Credentials.of(s3.accessKey(), s3.secretKey()));
    }

    private static Instant processStart(String vm, DrSite site) {
        return ProcessHandle.of(site.pid(vm).orElseThrow())
                .orElseThrow()
                .info()
                .startInstant()
                .orElseThrow();
    }

    private static Instant max(Instant a, Instant b) {
        return a.isAfter(b) ? a : b;
    }

    static List<ProcessHandle> qemuProcessesUnder(Path dir) {
        String d = dir.toAbsolutePath().toString();
        return ProcessHandle.allProcesses()
                .filter(p -> p.info()
                        .commandLine()
                        .map(c -> c.contains(DrSite.QEMU) && c.contains(d))
                        .orElse(false))
                .toList();
    }

    /**
     * Fails web-1 back home from {@code site}: the point it brings home holds the whole disk, only
     * the chunk the DR site wrote is new, and the disk at home has the DR disk's bytes ({@code drSha}).
     */
    private void failBackWeb1(Repository repo, DrSite site, RecoveryPlan plan, String drSha) throws Exception {
        Failback.VmResult back = new Failback(repo, site, 8, Clock.systemUTC(), RecoveryProgress.NONE)
                .run(plan, List.of("web-1"), Failback.homeDir(plan, Optional.empty()))
                .get(0);
        assertThat(back.point().sizeBytes()).isEqualTo(DISK);
        assertThat(back.point().bytesNew())
                .as("only the chunk written at the DR site is new")
                .isPositive()
                .isLessThanOrEqualTo(RepositoryConfig.defaults().chunkSize());
        assertThat(Restorer.sha256(dir.resolve("home/web-1/sd0.raw"))).isEqualTo(drSha);
    }

    /** A plan that fails web-1 over to {@code drDir}, on the DR host the lines under {@code dr-host:} describe. */
    private RecoveryPlan web1Plan(Path drDir, String drHost) throws IOException {
        Path planFile = dir.resolve("plan.yaml");
        Files.writeString(
                planFile,
                """
                site: dr-test
                source: offsite
                work-dir: %s
                home-dir: %s
                dr-host:
                %s
                groups:
                  - name: apps
                    vms:
                      - {name: web-1, memory: 64}
                """
                        .formatted(drDir, dir.resolve("home"), drHost.indent(2).stripTrailing()));
        return new RecoveryPlanParser().parseFile(planFile);
    }

    /**
     * Creates {@code pool} on {@code ceph} and returns the plan's RBD {@code disks:} line: a
     * ceph.conf that names no keyring, and the admin key in a key file of its own.
     */
    private String rbdDisks(io.tidemark.testkit.ceph.CephCluster ceph, String pool) throws IOException {
        ceph.createPool(pool);
        Path conf = dir.resolve("ceph-nokeyring.conf");
        Files.writeString(
                conf,
                Files.readString(ceph.confFile())
                        .lines()
                        .filter(l -> !l.strip().startsWith("keyring"))
                        .collect(java.util.stream.Collectors.joining("\n", "", "\n")));
        Path keyFile = dir.resolve("dr.key");
        Files.writeString(keyFile, ceph.adminKey().strip());
        return "disks: {format: rbd, pool: %s, ceph-conf: %s, user: admin, key-file: %s}"
                .formatted(pool, conf, keyFile);
    }
}
