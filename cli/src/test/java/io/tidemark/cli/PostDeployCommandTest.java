package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.PointMark;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicySet;
import io.tidemark.recovery.PostDeployMarks;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookService;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark hook post-deploy} against a real endpoint whose handler marks in-memory repositories. */
class PostDeployCommandTest {

    static final String SECRET = "0123456789abcdef0123456789abcdef";

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final FakeClock clock = new FakeClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    private final Repository local =
            Repository.openOrInit(new InMemoryObjectTarget("local"), RepositoryConfig.defaults());
    private final Repository offsite =
            Repository.openOrInit(new InMemoryObjectTarget("offsite"), RepositoryConfig.defaults());
    private HookServer server;
    private Path secretFile;

    @BeforeEach
    void start() throws Exception {
        secretFile = Files.writeString(dir.resolve("hook.secret"), SECRET + "\n");
        // shop-1 and shop-2 were snapshotted before deploying 4f2a9c1 (pipeline 118, retried as 119),
        // and before an older deploy; db-1 only by its schedule
        point(local, "shop-1", "rp-a", hook("4f2a9c1", "build-118"));
        point(local, "shop-2", "rp-b", hook("4f2a9c1", "build-119"));
        point(local, "shop-1", "rp-c", hook("0ld0ld0", "build-100"));
        point(local, "db-1", "rp-d", Trigger.schedule("db"));
        point(offsite, "shop-1", "rp-a", hook("4f2a9c1", "build-118")); // shop-2's is not replicated yet
        HookService service =
                new HookService(PolicySet.empty(), new InMemoryInventory(), new RecordingEventBus(), clock);
        server = HookServer.start(
                new InetSocketAddress("127.0.0.1", 0),
                service,
                Optional.of(new PostDeployMarks(Map.of("local", local, "offsite", offsite), clock)),
                Optional.empty(),
                HookSecret.of(SECRET, "test"),
                clock);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private static Trigger hook(String commit, String pipeline) {
        return new Trigger(TriggerKind.HOOK, Map.of("app", "shop", "commit", commit, "pipeline", pipeline));
    }

    private void point(Repository repository, String vm, String id, Trigger trigger) {
        Instant at = clock.instant();
        repository.commit(new Manifest(
                1,
                id,
                vm,
                "hv1",
                "j-" + id,
                at,
                at,
                ConsistencyAchieved.CRASH,
                trigger,
                "shop",
                Optional.empty(),
                List.of()));
    }

    private int postDeploy(String... extra) {
        List<String> args = new ArrayList<>(List.of(
                "hook",
                "post-deploy",
                "--app",
                "shop",
                "--url",
                "http://127.0.0.1:" + server.port(),
                "--secret-file",
                secretFile.toString()));
        args.addAll(List.of(extra));
        return Main.execute(args.toArray(String[]::new));
    }

    @Test
    void aFailedDeployPinsItsPreDeployPointsAtEveryLocation() {
        assertThat(postDeploy("--commit", "4f2a9c1", "--outcome", "failure")).isZero();

        assertThat(std.out())
                .contains("pinned 3 restore point(s) of 2 VM(s) of the deploy of shop 4f2a9c1")
                .contains("offsite");
        assertThat(local.marks("shop-1")).containsOnlyKeys("rp-a");
        assertThat(local.marks("shop-2")).containsOnlyKeys("rp-b");
        assertThat(offsite.marks("shop-1")).containsOnlyKeys("rp-a");
        PointMark mark = local.marks("shop-1").get("rp-a");
        assertThat(mark.kind()).isEqualTo(PointMark.Kind.PINNED);
        assertThat(mark.reason()).isEqualTo("deploy of shop 4f2a9c1 failed");
        assertThat(local.marks("db-1")).isEmpty();
    }

    @Test
    void aSuccessfulDeployOfOnePipelineRunExpiresOnlyThatRunsPoints() {
        assertThat(postDeploy("--commit", "4f2a9c1", "--pipeline", "build-119", "--outcome", "success", "--json"))
                .isZero();

        assertThat(std.out()).contains("\"mark\":\"expired\"");
        assertThat(local.marks("shop-2").get("rp-b").kind()).isEqualTo(PointMark.Kind.EXPIRED);
        assertThat(local.marks("shop-1")).isEmpty();
        assertThat(offsite.marks("shop-1")).isEmpty();
    }

    @Test
    void aDeployWithoutPreDeployPointsExitsTwoAndAWrongOutcomeExitsOne() {
        assertThat(postDeploy("--commit", "deadbee", "--outcome", "failure")).isEqualTo(2);
        assertThat(std.err()).contains("no pre-deploy restore point of the deploy of shop deadbee");
        assertThat(postDeploy("--commit", "4f2a9c1", "--outcome", "maybe")).isEqualTo(1);
        assertThat(std.err()).contains("--outcome must be success or failure");
        assertThat(local.marks("shop-1")).isEmpty();
    }

    @Test
    void aWrongSecretExitsTwoAndMarksNothing() throws Exception {
        Files.writeString(secretFile, "ffffffffffffffffffffffffffffffff\n");

        assertThat(postDeploy("--commit", "4f2a9c1", "--outcome", "failure")).isEqualTo(2);

        assertThat(std.err()).contains("the engine refused the signature");
        assertThat(local.marks("shop-1")).isEmpty();
    }
}
