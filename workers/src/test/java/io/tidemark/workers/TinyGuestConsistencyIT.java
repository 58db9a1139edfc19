package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Application consistency on a real Linux guest with qemu-guest-agent ({@link TinyGuest}, booted
 * once for the class): freeze → the capture transaction → thaw, the restored file system, a guest
 * writing while it is backed up, a worker that dies while the guest is frozen, and a policy that
 * requires an agent where there is none.
 */
class TinyGuestConsistencyIT {

    private static final String VM = "g1";
    private static final Duration GUEST = Duration.ofSeconds(120);

    @TempDir
    static Path shared;

    private static TinyGuest guest;

    @TempDir
    Path dir;

    private QmpHypervisor hv;
    private Repository repo;
    private final RecordingEventBus bus = new RecordingEventBus();
    private BackupWorker worker;
    private final AtomicLong jobs = new AtomicLong();

    @BeforeAll
    static void bootGuest() {
        guest = TinyGuest.boot(shared.resolve("s"), VM, 64L << 20);
    }

    @AfterAll
    static void stopGuest() {
        if (guest != null) {
            guest.close();
        }
    }

    @BeforeEach
    void setUp() throws IOException {
        hv = new QmpHypervisor(guest.qmpSocket().getParent(), dir.resolve("state"));
        repo = Repository.openOrInit(
                new FileObjectTarget(Files.createDirectories(dir.resolve("repo"))), RepositoryConfig.defaults());
        worker = new BackupWorker(
                "hv1", hv, repo, bus, Clock.systemUTC(), dir.resolve("work"), CaptureHooks.NONE, NbdBlockSource::open);
    }

    @AfterEach
    void tearDown() {
        worker.close();
        hv.close();
        if (guest.running() && !guest.freezeStatus().equals("thawed")) {
            guest.thaw(); // never leave the shared guest frozen for the next test
        }
    }

    private SnapshotJob job(ConsistencyPolicy consistency) {
        return new SnapshotJob(
                VM,
                "hv1",
                "pol",
                Trigger.schedule("pol"),
                List.of(),
                Instant.now(),
                Optional.of(consistency),
                Optional.empty(),
                OptionalLong.empty());
    }

    private Manifest backup(ConsistencyPolicy consistency) {
        return worker.backup("job-" + jobs.incrementAndGet(), job(consistency));
    }

    /** Restores the data disk to a raw image and checks that its file system is clean. */
    private Path restoreClean(Manifest m) throws Exception {
        Path img = dir.resolve(m.id() + ".raw");
        new Restorer(repo, 2).restoreDisk(m, TinyGuest.DISK, img, Restorer.Progress.NONE);
        String fsck = run("e2fsck", "-fn", img.toString());
        // exit 0 (run checks it) and no journal to replay: the file system was quiesced, not crashed
        assertThat(fsck).as("e2fsck -fn of the restored image").doesNotContainIgnoringCase("journal recovery");
        return img;
    }

    /** A file of the restored ext4 image. */
    private byte[] dump(Path img, String file) throws Exception {
        Path out = dir.resolve("dump-" + System.nanoTime());
        run("debugfs", "-R", "dump " + file + " " + out, img.toString());
        assertThat(out).as(file + " in the restored image").exists();
        return Files.readAllBytes(out);
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(String.join(" ", cmd) + ":\n" + out).isZero();
        return out;
    }

    @Test
    void anApplicationConsistentCaptureFreezesTheGuestAroundTheTransactionOnly() throws Exception {
        // written, not synced: only the freeze's flush puts it on the disk in time
        String sha = guest.shOk(
                        "dd if=/dev/urandom of=/mnt/before bs=64k count=8 2>/dev/null && sha256sum /mnt/before", GUEST)
                .split(" ")[0];
        List<String> whileFrozen = new CopyOnWriteArrayList<>();
        hv.onFrozen(vm -> whileFrozen.add(vm + " " + guest.freezeStatus()));

        Manifest m = backup(ConsistencyPolicy.APPLICATION_REQUIRED);

        assertThat(whileFrozen).containsExactly(VM + " frozen");
        assertThat(guest.freezeStatus()).isEqualTo("thawed");
        assertThat(m.consistency()).isEqualTo(ConsistencyAchieved.APPLICATION);
        assertThat(m.consistencyReason()).isEmpty();
        assertThat(Files.list(dir.resolve("state")).toList())
                .as("freeze markers")
                .isEmpty();
        Path img = restoreClean(m);
        assertThat(io.tidemark.format.Digest.sha256(dump(img, "/before")).hex()).isEqualTo(sha);
    }

    @Test
    void aGuestWritingDuringTheExportRestoresAWholePrefixOfItsRecordStream() throws Exception {
        guest.shOk("rm -f /mnt/stream", GUEST);
        // 64-byte records "rec <seq> <filler> <seq>\n", each appended with one write(), synced every 16
        long writer = guest.spawn("i=0; while true; do i=$((i+1)); printf 'rec %08d ----------------------------------'"
                + "'------- %08d\\n' $i $i >> /mnt/stream; [ $((i % 16)) -eq 0 ] && sync; done");
        try {
            long before = awaitRecords(100);
            // qemu-ga runs nothing but ping/status/thaw while frozen; the freeze itself is observed
            List<String> whileFrozen = new CopyOnWriteArrayList<>();
            // while frozen nothing writes to the disk (the freeze flushed the guest, and with it
            // QEMU's qcow2 caches): a copy of the image file then is the disk at the snapshot moment
            Path atFreeze = dir.resolve("at-freeze.raw");
            hv.onFrozen(vm -> {
                whileFrozen.add(guest.freezeStatus());
                try {
                    run(
                            "qemu-img",
                            "convert",
                            "-U",
                            "-O",
                            "raw",
                            guest.diskFile().toString(),
                            atFreeze.toString());
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });

            Manifest m = backup(ConsistencyPolicy.APPLICATION_PREFERRED);
            long after = records();

            assertThat(whileFrozen).containsExactly("frozen");
            assertThat(m.consistency()).isEqualTo(ConsistencyAchieved.APPLICATION);
            Path img = restoreClean(m);
            assertThat(Restorer.sha256(img))
                    .as("the restored image is the disk at the snapshot moment")
                    .isEqualTo(Restorer.sha256(atFreeze));
            byte[] stream = dump(img, "/stream");
            assertThat(stream.length % 64)
                    .as("the restored stream holds whole records")
                    .isZero();
            long restored = stream.length / 64;
            String[] lines = new String(stream, StandardCharsets.US_ASCII).split("\n", -1);
            for (int i = 0; i < restored; i++) {
                String want = String.format("rec %08d ----------------------------------------- %08d", i + 1, i + 1);
                assertThat(lines[i]).as("record %d of %d", i + 1, restored).isEqualTo(want);
            }
            // the snapshot moment lies between the two observations, and the guest went on writing
            // while the export was read: what it wrote then is not in the restore point
            assertThat(restored).isBetween(before, after);
            assertThat(after).as("records in the guest after the backup").isGreaterThan(restored);
        } finally {
            guest.sh("kill " + writer, GUEST);
        }
    }

    private long records() {
        return Long.parseLong(guest.shOk("wc -c < /mnt/stream 2>/dev/null || echo 0", GUEST)
                        .trim())
                / 64;
    }

    private long awaitRecords(long n) {
        long deadline = System.nanoTime() + GUEST.toNanos();
        long have;
        while ((have = records()) < n) {
            assertThat(System.nanoTime())
                    .as("the writer wrote %d records in time", n)
                    .isLessThan(deadline);
        }
        return have;
    }

    @Test
    void aFailureWhileTheGuestIsFrozenStillThawsItAndCommitsNothing() {
        hv.onFrozen(vm -> {
            assertThat(guest.freezeStatus()).isEqualTo("frozen");
            throw new IllegalStateException("injected: the capture fails while the guest is frozen");
        });
        assertThatThrownBy(() -> backup(ConsistencyPolicy.APPLICATION_REQUIRED)).hasMessageContaining("injected");
        assertThat(guest.freezeStatus()).isEqualTo("thawed");
        assertThat(dir.resolve("state").resolve(VM + ".frozen")).doesNotExist();
        assertThat(repo.manifests(VM)).isEmpty();
        // the guest writes again, and the next capture through the same worker succeeds
        guest.shOk("echo after > /mnt/after-failure && sync", GUEST);
        hv.onFrozen(vm -> {});
        assertThat(backup(ConsistencyPolicy.APPLICATION_REQUIRED).consistency())
                .isEqualTo(ConsistencyAchieved.APPLICATION);
    }

    @Test
    void aWorkerThatDiedWhileTheGuestWasFrozenThawsItWhenItStartsAgain() throws Exception {
        Path state = dir.resolve("state-halt");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(
                        java,
                        "-cp",
                        System.getProperty("java.class.path"),
                        FreezeAndHalt.class.getName(),
                        guest.qmpSocket().getParent().toString(),
                        state.toString(),
                        VM,
                        dir.resolve("work-halt").toString())
                .redirectErrorStream(true)
                .redirectOutput(dir.resolve("child.log").toFile())
                .start();
        try {
            assertThat(child.waitFor(5, TimeUnit.MINUTES)).isTrue();
        } finally {
            child.destroyForcibly();
        }
        assertThat(child.exitValue())
                .as("the child halted while the guest was frozen; its log:\n"
                        + Files.readString(dir.resolve("child.log")))
                .isEqualTo(42);
        assertThat(guest.freezeStatus()).isEqualTo("frozen");
        assertThat(state.resolve(VM + ".frozen")).exists();

        try (QmpHypervisor restarted = new QmpHypervisor(guest.qmpSocket().getParent(), state)) {
            assertThat(restarted.thawLeftovers()).containsExactly(VM);
        }
        assertThat(guest.freezeStatus()).isEqualTo("thawed");
        assertThat(state.resolve(VM + ".frozen")).doesNotExist();
        // and the dead worker's half-made capture does not stand in the way of the next one
        assertThat(backup(ConsistencyPolicy.APPLICATION_REQUIRED).consistency())
                .isEqualTo(ConsistencyAchieved.APPLICATION);
    }

    @Test
    void withoutAnAgentRequiredFailsClearlyAndLosesNoChangeWhilePreferredSaysWhy(@TempDir Path vmDir) throws Exception {
        Path sockets = Files.createDirectories(vmDir.resolve("q"));
        try (QemuVm vm = QemuVm.start(sockets, "bare", 16L << 20);
                QmpHypervisor bare = new QmpHypervisor(sockets, dir.resolve("state-bare"));
                BackupWorker w = new BackupWorker(
                        "hv1",
                        bare,
                        repo,
                        bus,
                        Clock.systemUTC(),
                        dir.resolve("work-bare"),
                        CaptureHooks.NONE,
                        NbdBlockSource::open)) {
            vm.write("sd0", 0, 1 << 20, 0x11);
            Manifest base = w.backup("b1", bareJob(ConsistencyPolicy.CRASH));
            assertThat(base.consistency()).isEqualTo(ConsistencyAchieved.CRASH);
            assertThat(base.consistencyReason()).isEmpty();
            vm.write("sd0", 5L << 20, 4096, 0x22);

            Event required = Event.of("b2", Instant.now(), bareJob(ConsistencyPolicy.APPLICATION_REQUIRED));
            // a permanent failure ends the job in one JobFailed and the handler returns (nothing to redeliver)
            w.handle("tidemark.jobs.hv1", required);
            assertThat(bus.payloads(JobFailed.class)).singleElement().satisfies(f -> {
                assertThat(f.vm()).isEqualTo("bare");
                assertThat(f.retriable()).isFalse();
                assertThat(f.reason()).contains(FailureReason.CONSISTENCY_NOT_MET);
                assertThat(f.error())
                        .contains("VM 'bare' requires application consistency")
                        .contains(sockets.resolve("bare.qga").toString())
                        .contains("install and start qemu-guest-agent")
                        .contains("application-preferred");
            });
            assertThat(repo.manifests("bare")).hasSize(1);
            assertThat(vm.bitmapNames("sd0"))
                    .containsExactly(base.disks().get(0).checkpoint());

            Manifest preferred = w.backup("b3", bareJob(ConsistencyPolicy.APPLICATION_PREFERRED));
            assertThat(preferred.consistency()).isEqualTo(ConsistencyAchieved.CRASH);
            assertThat(preferred.consistencyReason())
                    .hasValueSatisfying(r -> assertThat(r).contains("no guest agent answered", "bare.qga"));
            // the failed job changed nothing: this one is incremental to the base and holds the write
            assertThat(preferred.parent()).contains(base.id());
            assertThat(preferred.incremental()).isTrue();
            assertThat(preferred.bytesRead()).isEqualTo(16 * 1024); // the write's 16 KiB grain, a patch (ADR 15)
            Path img = dir.resolve("bare.raw");
            assertThat(new Restorer(repo, 2)
                            .restoreDisk(preferred, "sd0", img, Restorer.Progress.NONE)
                            .sha256())
                    .isEqualTo(vm.model("sd0").sha256());
        }
    }

    private static SnapshotJob bareJob(ConsistencyPolicy consistency) {
        return new SnapshotJob(
                "bare",
                "hv1",
                "pol",
                Trigger.schedule("pol"),
                List.of(),
                Instant.now(),
                Optional.of(consistency),
                Optional.empty(),
                OptionalLong.empty());
    }
}
