package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.CaptureHooks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The running engine's live reload, wired as {@code tidemark run} wires it (real Kafka, Quartz,
 * QEMU): a `git pull` that changes one policy file reschedules that policy only; an unchanged policy
 * keeps its cadence exactly (no firing lost, none doubled); an invalid change keeps the running set;
 * a new file schedules a new policy and a deleted one stops its policy.
 */
class PolicyReloadIT {

    static final String HOST = "reload-host";
    static final String VM = "web-1";
    static final Duration DEADLINE = Duration.ofSeconds(120);

    @TempDir
    Path dir;

    /** A job seen on the host's job topic. */
    record Fired(String jobId, String policy, Instant scheduledFor) {}

    private final List<Fired> fired = new CopyOnWriteArrayList<>();

    private static String policy(String name, String interval) {
        return """
                name: %s
                vms: {names: [%s]}
                schedule: {interval: %s}
                rpo: 1h
                """
                .formatted(name, VM, interval);
    }

    private List<Instant> firings(String policy) {
        return fired.stream()
                .filter(f -> f.policy().equals(policy))
                .map(Fired::scheduledFor)
                .toList();
    }

    @Test
    void aChangedPolicyIsRescheduledAndTheOthersKeepTheirCadence() throws Exception {
        Path qmpDir = Files.createDirectories(dir.resolve("qmp"));
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(policies.resolve("steady.yaml"), policy("steady", "10s"));
        Files.writeString(policies.resolve("edited.yaml"), policy("edited", "1h"));
        EngineConfig config = EngineConfig.builder()
                .host(HOST)
                .data(dir.resolve("data"))
                .qmpDir(qmpDir)
                .policies(policies)
                .build();

        try (QemuVm vm = QemuVm.start(qmpDir, VM, 16L << 20);
                Engine engine = Engine.start(config, CaptureHooks.NONE, Clock.systemUTC());
                EventBus.Subscription watch = engine.bus()
                        .subscribe("reload-watch", List.of(Topics.jobs(HOST)), (topic, e) -> {
                            if (e.payload() instanceof SnapshotJob job) {
                                fired.add(new Fired(e.jobId(), job.policy(), job.scheduledFor()));
                            }
                        })) {
            await().atMost(DEADLINE).until(() -> firings("steady").size() >= 2);
            int editedBefore = firings("edited").size();

            // the edit: 1h → 10s; applied by polling, without a restart
            Files.writeString(policies.resolve("edited.yaml"), policy("edited", "10s"));
            await().atMost(DEADLINE).until(() -> firings("edited").size() >= editedBefore + 2);

            // an invalid edit: logged, the running set stays (edited keeps firing every 10 s)
            Files.writeString(policies.resolve("edited.yaml"), policy("edited", "10s") + "colour: blue\n");
            int afterInvalid = firings("edited").size();
            await().atMost(DEADLINE).until(() -> firings("edited").size() >= afterInvalid + 2);
            assertThat(engine.scheduler().policies().names()).containsExactlyInAnyOrder("steady", "edited");

            // a new file and a deleted one
            Files.writeString(policies.resolve("added.yaml"), policy("added", "10s"));
            Files.delete(policies.resolve("edited.yaml"));
            await().atMost(DEADLINE).until(() -> firings("added").size() >= 1);
            await().atMost(DEADLINE)
                    .until(() -> !engine.scheduler().policies().names().contains("edited"));
            int editedAtRemoval = firings("edited").size();
            int steadyNow = firings("steady").size();
            await().atMost(DEADLINE).until(() -> firings("steady").size() >= steadyNow + 2);
            assertThat(firings("edited")).hasSize(editedAtRemoval);
        }

        assertThat(fired).extracting(Fired::jobId).doesNotHaveDuplicates();
        // steady was never touched: every 10 s to the millisecond, through all the reloads
        List<Instant> steady = firings("steady");
        assertThat(steady).hasSizeGreaterThanOrEqualTo(6);
        for (int i = 1; i < steady.size(); i++) {
            assertThat(Duration.between(steady.get(i - 1), steady.get(i)))
                    .as("gap between steady firings %d and %d", i - 1, i)
                    .isEqualTo(Duration.ofSeconds(10));
        }
        // edited, once rescheduled, fires every 10 s as well
        List<Instant> edited = firings("edited");
        for (int i = 2; i < edited.size(); i++) {
            assertThat(Duration.between(edited.get(i - 1), edited.get(i))).isEqualTo(Duration.ofSeconds(10));
        }
    }
}
