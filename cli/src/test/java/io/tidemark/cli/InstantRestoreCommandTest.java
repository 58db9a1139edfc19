package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.StdStreams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class InstantRestoreCommandTest {

    @RegisterExtension
    final StdStreams std = new StdStreams();

    @TempDir
    Path dir;

    @Test
    void helpTeachesWithAnExample() {
        assertThat(Main.execute("restore-instant", "--help")).isZero();
        assertThat(std.out())
                .contains("Example:  tidemark restore-instant")
                .contains("--hydrate-to")
                .contains("--boot-reads")
                .contains("docs/runbooks/instant-restore.md");
        std.reset();
        assertThat(Main.execute("--help")).isZero();
        assertThat(std.out()).contains("restore-instant");
    }

    @Test
    void aDeviceWithoutQemuIsBadInput() {
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        dir.toString(),
                        "--vm",
                        "web",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--device",
                        "virtio-blk-pci"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--device needs --qmp");
    }

    @Test
    void anUnknownBootReadsModeIsBadInput() {
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        dir.toString(),
                        "--vm",
                        "web",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--boot-reads",
                        "always"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--boot-reads must be prefetch, record or off, not 'always'");
        assertThat(dir.resolve("ir")).doesNotExist();
    }

    @Test
    void aBusWithoutDeviceIsBadInput() {
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        dir.toString(),
                        "--vm",
                        "web",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--qmp",
                        dir.resolve("vm.qmp").toString(),
                        "--bus",
                        "tm-hp0"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("--bus needs --device");
    }

    @Test
    void pciDriversAreRecognised() {
        assertThat(InstantRestoreCommand.isPci("virtio-blk-pci")).isTrue();
        assertThat(InstantRestoreCommand.isPci("nvme")).isTrue();
        assertThat(InstantRestoreCommand.isPci("scsi-hd")).isFalse();
    }

    @Test
    void aMissingPointIsPermanentAndNamesTheVm() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("repo"));
        Repository.openOrInit(new FileObjectTarget(repo), RepositoryConfig.defaults());
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "nope",
                        "--dir",
                        dir.resolve("ir").toString()))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("VM 'nope' has no restore points");
        assertThat(dir.resolve("ir")).doesNotExist();
    }

    /** Three one-disk points an hour apart (p0, p1, p2); p1 taken by a pre-deploy hook of shop@cafe1234. */
    private Path threePoints() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("repo"));
        int chunk = 64 * 1024;
        Repository r = Repository.openOrInit(new FileObjectTarget(repo), new RepositoryConfig(1, chunk, 16));
        for (int n = 0; n < 3; n++) {
            var index = r.newIndex(4L * chunk, Optional.empty());
            byte[] data = new byte[chunk];
            java.util.Arrays.fill(data, (byte) (n + 1));
            index.set(1, r.putChunk(data, chunk).digest());
            Instant at = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(3600L * n);
            Trigger t = n == 1
                    ? new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", "cafe1234", "pipeline", "p"))
                    : Trigger.schedule("pol");
            r.commit(new Manifest(
                    1,
                    "p" + n,
                    "web-1",
                    "hv1",
                    "j" + n,
                    at,
                    at,
                    ConsistencyAchieved.CRASH,
                    t,
                    "pol",
                    Optional.empty(),
                    List.of(new DiskEntry(
                            "sda",
                            4L * chunk,
                            chunk,
                            index.finish().hex(),
                            "c",
                            Optional.of(FullReason.of(FullReason.Kind.UNRECORDED, "full")),
                            0,
                            0))));
        }
        return repo;
    }

    private final AtomicInteger serves = new AtomicInteger();

    /** Runs restore-instant (which serves until interrupted), waits for its JSON summary, then stops it. */
    private JsonNode serve(Path repo, String... select) throws Exception {
        std.reset();
        Path ir = dir.resolve("ir" + serves.incrementAndGet()); // the overlay of a run is never reused
        List<String> args = new java.util.ArrayList<>(
                List.of("restore-instant", "--from", repo.toString(), "--vm", "web-1", "--dir", ir.toString()));
        args.addAll(List.of(select));
        args.add("--json");
        AtomicInteger exit = new AtomicInteger(-1);
        Thread t = new Thread(() -> exit.set(Main.execute(args.toArray(String[]::new))), "restore-instant");
        t.start();
        // the command's only signal is its summary on stdout (or that it ended)
        org.awaitility.Awaitility.await()
                .atMost(java.time.Duration.ofMinutes(2))
                .until(() -> std.out().contains("\"restorePoint\"") || !t.isAlive());
        t.interrupt();
        t.join(TimeUnit.MINUTES.toMillis(1));
        assertThat(t.isAlive()).isFalse();
        assertThat(exit.get()).as(std.err()).isZero();
        return Json.mapper()
                .readTree(std.out()
                        .lines()
                        .filter(l -> l.startsWith("{"))
                        .findFirst()
                        .orElseThrow());
    }

    @Test
    void selectsThePointLikeRestoreDoes() throws Exception {
        Path repo = threePoints();
        assertThat(serve(repo).path("restorePoint").asText()).isEqualTo("p2");
        JsonNode at = serve(repo, "--at", "2026-11-24T01:30:00Z");
        assertThat(at.path("restorePoint").asText()).isEqualTo("p1");
        assertThat(at.path("selectedBy").asText()).contains("at or before 2026-11-24T01:30:00Z");
        JsonNode tagged = serve(repo, "--tag", "pre-deploy:shop@cafe");
        assertThat(tagged.path("restorePoint").asText()).isEqualTo("p1");
        assertThat(tagged.path("tag").asText()).contains("cafe1234");
        assertThat(serve(repo, "--point", "p0").path("restorePoint").asText()).isEqualTo("p0");

        std.reset();
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--point",
                        "p0",
                        "--at",
                        "2h ago"))
                .isEqualTo(Main.EXIT_INVALID);
        assertThat(std.err()).contains("only one of --point, --at and --tag");
        std.reset();
        assertThat(Main.execute(
                        "restore-instant",
                        "--from",
                        repo.toString(),
                        "--vm",
                        "web-1",
                        "--dir",
                        dir.resolve("ir").toString(),
                        "--tag",
                        "pre-deploy:beef"))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("the newest pre-deploy points: p1");
    }
}
