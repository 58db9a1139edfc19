package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.EventPayload;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.format.Json;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookService;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.StdStreams;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tidemark hook pre-deploy} against a real endpoint on 127.0.0.1; a fake plays the workers. */
class HookCommandTest {

    static final String SECRET = "0123456789abcdef0123456789abcdef";

    @TempDir
    Path dir;

    @RegisterExtension
    final StdStreams std = new StdStreams();

    private final FakeClock clock = new FakeClock(Instant.now().truncatedTo(ChronoUnit.SECONDS));
    private final RecordingEventBus bus = new RecordingEventBus();
    private volatile String outcome = "committed";
    private HookServer server;
    private Path secretFile;

    @BeforeEach
    void start() throws Exception {
        secretFile = Files.writeString(dir.resolve("hook.secret"), SECRET + "\n");
        Policy shop = Policy.of(
                        "shop",
                        VmSelector.ofNames("shop-1"),
                        Schedule.Interval.every(Duration.ofHours(1)),
                        Duration.ofHours(2),
                        List.of())
                .withPreDeployApps(List.of("shop"));
        HookService service =
                new HookService(PolicySet.of(shop), new InMemoryInventory().put("shop-1", "hv1", Map.of()), bus, clock);
        bus.subscribe("fake-worker", List.of(Topics.jobs("hv1")), this::work);
        server = HookServer.start(new InetSocketAddress("127.0.0.1", 0), service, HookSecret.of(SECRET, "test"), clock);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private void work(String topic, Event event) {
        if (!(event.payload() instanceof SnapshotJob job)) {
            return;
        }
        clock.advance(Duration.ofMillis(1500));
        switch (outcome) {
            case "committed" -> {
                publish(event.jobId(), new SnapshotCaptured(job.vm(), clock.instant()));
                publish(
                        event.jobId(),
                        new RestorePointCreated(job.vm(), "rp-1", "shop", List.of(), clock.instant(), 10, 1));
            }
            case "failed" -> publish(event.jobId(), new JobFailed(job.vm(), "backup", "QMP socket refused", false));
            case "stalled" -> clock.advance(Duration.ofHours(1));
            default -> throw new IllegalStateException(outcome);
        }
    }

    private void publish(String jobId, EventPayload payload) {
        String topic = payload instanceof RestorePointCreated ? Topics.RESTORE_POINTS : Topics.JOB_STATUS;
        bus.publish(topic, payload.vm(), Event.of(jobId, clock.instant(), payload));
    }

    private int hook(String... extra) {
        return hookAt("http://127.0.0.1:" + server.port(), secretFile.toString(), extra);
    }

    private int hookAt(String url, String secret, String... extra) {
        List<String> args = new ArrayList<>(List.of(
                "hook",
                "pre-deploy",
                "--app",
                "shop",
                "--commit",
                "4f2a9c1",
                "--pipeline",
                "build-118",
                "--url",
                url,
                "--secret-file",
                secret));
        args.addAll(List.of(extra));
        return Main.execute(args.toArray(String[]::new));
    }

    @Test
    void exitsZeroWhenTheLevelIsReached() {
        assertThat(hook("--wait", "committed")).isZero();
        assertThat(std.out())
                .contains("RESTORE POINT")
                .containsPattern("shop-1 +hv1 +rp-1 +1\\.5 s +1\\.5 s +n/a")
                .contains("1 VM committed in 1.5 s; the deploy may proceed");
        assertThat(bus.payloads(SnapshotJob.class)).hasSize(1);
    }

    @Test
    void printsTheEnginesAnswerWithJson() throws Exception {
        assertThat(hook("--json")).isZero();
        // the test's log goes to stdout as well; the command prints the answer on one line
        String line =
                std.out().lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow();
        var answer = Json.mapper().readTree(line);
        assertThat(answer.path("status").asText()).isEqualTo("reached");
        assertThat(answer.path("wait").asText()).isEqualTo("captured");
        assertThat(answer.path("vms").get(0).path("jobId").asText()).isEqualTo("hook/shop/4f2a9c1/build-118/shop-1");
    }

    @Test
    void aFailedSnapshotExitsTwo() {
        outcome = "failed";
        assertThat(hook()).isEqualTo(2);
        assertThat(std.err())
                .contains("snapshot of VM shop-1 failed at backup: QMP socket refused")
                .contains("do not deploy");
    }

    @Test
    void aTimeoutExitsThree() {
        outcome = "stalled";
        assertThat(hook("--timeout", "90s")).isEqualTo(3);
        assertThat(std.err()).contains("timed out after").contains("waiting for shop-1 to be captured");
    }

    @Test
    void anUnknownAppExitsTwoNamingTheKnownApps() {
        assertThat(Main.execute(
                        "hook",
                        "pre-deploy",
                        "--app",
                        "web",
                        "--commit",
                        "c",
                        "--pipeline",
                        "p",
                        "--url",
                        "http://127.0.0.1:" + server.port(),
                        "--secret-file",
                        secretFile.toString()))
                .isEqualTo(2);
        assertThat(std.err()).contains("no policy lists app 'web'").contains("known apps: shop");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void aWrongSecretExitsTwoAndPublishesNothing() throws Exception {
        Files.writeString(secretFile, "another-secret-of-enough-length\n");
        assertThat(hook()).isEqualTo(2);
        assertThat(std.err()).contains("the engine refused the signature: bad signature");
        assertThat(std.err()).doesNotContain("another-secret");
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void anUnreachableEngineExitsThree() throws Exception {
        int closed;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            closed = s.getLocalPort();
        }
        assertThat(hookAt("http://127.0.0.1:" + closed, secretFile.toString())).isEqualTo(3);
        assertThat(std.err()).contains("cannot reach the engine at http://127.0.0.1:" + closed + "/hooks/pre-deploy");
    }

    @Test
    void badInputExitsOne() {
        assertThat(Main.execute("hook", "pre-deploy", "--app", "shop", "--pipeline", "p"))
                .isEqualTo(1);
        assertThat(std.err()).contains("--commit is required");
        assertThat(hook("--wait", "deployed")).isEqualTo(1);
        assertThat(std.err()).contains("--wait must be one of captured, committed, replicated");
        assertThat(hook("--timeout", "2h")).isEqualTo(1);
        assertThat(hook("--timeout", "10")).isEqualTo(1);
        assertThat(std.err()).contains("--timeout must be a duration from 1s to 1h");
        assertThat(hookAt(
                        "http://127.0.0.1:" + server.port(),
                        dir.resolve("absent").toString()))
                .isEqualTo(1);
        assertThat(std.err()).contains("cannot read the pre-deploy hook secret file");
        assertThat(hookAt("127.0.0.1:9465", secretFile.toString())).isEqualTo(1);
        assertThat(std.err()).contains("--url must be http://HOST:PORT");
        assertThat(hook("--no-such-flag")).isEqualTo(1);
        assertThat(bus.published()).isEmpty();
    }

    @Test
    void parsesTimeouts() {
        assertThat(HookCommand.PreDeploy.parseTimeout("1h")).contains(Duration.ofHours(1));
        assertThat(HookCommand.PreDeploy.parseTimeout("2m30s")).contains(Duration.ofSeconds(150));
        assertThat(HookCommand.PreDeploy.parseTimeout("0s")).isEmpty();
        assertThat(HookCommand.PreDeploy.parseTimeout("")).isEmpty();
    }

    @Test
    void backupOfAnUnknownVmNamesTheVmsTheEngineKnowsAndWithJsonIsTheErrorObject() throws Exception {
        String url = "http://127.0.0.1:" + server.port();
        assertThat(Main.execute("backup", "--vm", "shop-9", "--url", url, "--secret-file", secretFile.toString()))
                .isEqualTo(Main.EXIT_PERMANENT);
        assertThat(std.err()).contains("no VM 'shop-9'").contains("it knows shop-1");
        std.reset();
        assertThat(Main.execute(
                        "backup", "--vm", "shop-9", "--url", url, "--secret-file", secretFile.toString(), "--json"))
                .isEqualTo(Main.EXIT_PERMANENT);
        String line =
                std.out().lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow();
        String document = std.out().substring(std.out().indexOf(line)); // the test's log goes to stdout too
        var error = Json.mapper().readTree(document);
        assertThat(error.path("exitCode").asInt()).isEqualTo(Main.EXIT_PERMANENT);
        assertThat(error.path("error").asText()).contains("it knows shop-1");
        assertThat(error.path("detail").path("error").asText()).isEqualTo("unknown-vm");
        assertThat(bus.payloads(SnapshotJob.class)).isEmpty();
    }
}
