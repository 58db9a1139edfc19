package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Live reload of the policy directory: a valid change is applied, an invalid one keeps the old set. */
class PolicyWatcherTest {

    @TempDir
    Path dir;

    private final List<PolicySet> reloads = new CopyOnWriteArrayList<>();
    private PolicySet initial;

    private static String policy(String name, String interval) {
        return "name: " + name + "\nvms: {names: [" + name + "-1]}\nschedule:\n  interval: " + interval + "\nrpo: 1h\n";
    }

    @BeforeEach
    void writeInitialPolicies() throws Exception {
        Files.writeString(dir.resolve("web.yaml"), policy("web", "15m"));
        initial = new PolicyParser().loadDirectory(dir);
    }

    @Test
    void aChangedFileIsReloadedByThePollingThread() throws Exception {
        try (PolicyWatcher watcher =
                new PolicyWatcher(dir, new PolicyParser(), initial, reloads::add).start(Duration.ofMillis(20))) {
            Files.writeString(dir.resolve("web.yaml"), policy("web", "10m"));
            Files.writeString(dir.resolve("db.yaml"), policy("db", "1h"));
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> watcher.current().names().equals(List.of("db", "web")));
            assertThat(reloads).last().satisfies(set -> assertThat(set.names()).containsExactly("db", "web"));
        }
    }

    @Test
    void anUnchangedDirectoryIsNotReloaded() {
        PolicyWatcher watcher = new PolicyWatcher(dir, new PolicyParser(), initial, reloads::add);
        assertThat(watcher.poll()).isFalse();
        assertThat(reloads).isEmpty();
    }

    @Test
    void anInvalidChangeKeepsTheOldSetAndAFixIsAppliedLater() throws Exception {
        PolicyWatcher watcher = new PolicyWatcher(dir, new PolicyParser(), initial, reloads::add);
        Files.writeString(dir.resolve("web.yaml"), policy("web", "15 minutes"));
        assertThat(watcher.poll()).isFalse();
        assertThat(reloads).isEmpty();
        assertThat(watcher.current()).isSameAs(initial);

        Files.writeString(dir.resolve("web.yaml"), policy("web", "5m"));
        assertThat(watcher.poll()).isTrue();
        assertThat(reloads).singleElement().isSameAs(watcher.current());
        assertThat(watcher.current()).isNotEqualTo(initial);
    }

    @Test
    void aSetTheListenerRefusesKeepsTheOldSet() throws Exception {
        PolicyWatcher watcher = new PolicyWatcher(dir, new PolicyParser(), initial, set -> {
            throw new PermanentException("policy web names the unknown target nowhere");
        });
        Files.writeString(dir.resolve("web.yaml"), policy("web", "5m"));
        assertThat(watcher.poll()).isFalse();
        assertThat(watcher.current()).isSameAs(initial);
    }

    @Test
    void aRetriableFailureOfTheListenerIsRetriedOnTheNextPoll() throws Exception {
        List<Boolean> failNext = new CopyOnWriteArrayList<>(List.of(true));
        PolicyWatcher watcher = new PolicyWatcher(dir, new PolicyParser(), initial, set -> {
            if (failNext.remove(0)) {
                throw new RetriableException("the job store did not answer");
            }
            reloads.add(set);
        });
        failNext.add(false);
        Files.writeString(dir.resolve("web.yaml"), policy("web", "5m"));
        assertThat(watcher.poll()).isFalse();
        assertThat(watcher.poll()).isTrue();
        assertThat(reloads).singleElement().isSameAs(watcher.current());
    }
}
