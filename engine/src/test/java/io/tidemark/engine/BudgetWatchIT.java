package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.BudgetExceeded;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.CaptureHooks;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Capacity budgets inside a running engine (embedded KRaft Kafka, the file primary repository, every
 * role as {@code tidemark run} starts them): a VM whose newest restore point is larger than its
 * policy's local budget is reported on {@code tidemark.job-status} as {@code BudgetExceeded} by the
 * engine's budget watch, and /metrics shows the budget and its use. The point is committed into the
 * primary repository directly (no VM needed: the watch measures what the repository holds); the
 * watch measures on a short schedule instead of a minute after start.
 */
class BudgetWatchIT {

    private static final String VM = "budget-vm";
    private static final int CHUNKS = 3;
    private static final long BUDGET = 64L * 1024; // 64KiB: less than one chunk
    private static final Duration DEADLINE = Duration.ofSeconds(120);

    @TempDir
    Path dir;

    private final Random random = new Random(16);

    @Test
    void aVmOverItsLocalBudgetIsPublishedAndShownInMetrics() throws Exception {
        Manifest newest = commitFullPoint(dir.resolve("data"), VM, "db", CHUNKS, random);
        long used = (long) CHUNKS * RepositoryConfig.defaults().chunkSize();
        assertThat(used).isGreaterThan(BUDGET);

        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("db.yaml"),
                """
                name: db
                vms: {names: [%s]}
                schedule: {interval: 1h}
                rpo: 2h
                budget: {local: 64KiB}
                """
                        .formatted(VM));
        Path configFile = dir.resolve("tidemark.yaml");
        Files.writeString(
                configFile,
                """
                host: hv-budget
                data: %s
                qmpDir: %s
                policies: %s
                metrics: 127.0.0.1:0
                """
                        .formatted(dir.resolve("data"), Files.createDirectories(dir.resolve("qmp")), policies));

        List<BudgetExceeded> exceeded = new CopyOnWriteArrayList<>();
        List<Event> events = new CopyOnWriteArrayList<>();
        try (Engine engine = Engine.start(
                        EngineConfig.load(configFile),
                        CaptureHooks.NONE,
                        Clock.systemUTC(),
                        new Engine.BudgetChecks(Duration.ofSeconds(1), Duration.ofSeconds(2)));
                EventBus.Subscription watch = engine.bus()
                        .subscribe("budget-it-watch", List.of(Topics.JOB_STATUS), (topic, e) -> {
                            if (e.payload() instanceof BudgetExceeded b) {
                                exceeded.add(b);
                                events.add(e);
                            }
                        })) {
            await().atMost(DEADLINE).until(() -> !exceeded.isEmpty());
            BudgetExceeded b = exceeded.get(0);
            assertThat(b.vm()).isEqualTo(VM);
            assertThat(b.location()).isEqualTo("local");
            assertThat(b.policy()).isEqualTo("db");
            assertThat(b.budgetBytes()).isEqualTo(BUDGET);
            assertThat(b.usedBytes()).isEqualTo(used);
            assertThat(b.neededBytes()).isEqualTo(used);
            assertThat(b.restorePointId()).isEqualTo(newest.id());
            assertThat(events.get(0).jobId()).isEqualTo("budget/" + VM + "@local/" + newest.id());

            HttpClient http = HttpClient.newHttpClient();
            HttpRequest scrape = HttpRequest.newBuilder(URI.create(
                            "http://127.0.0.1:" + engine.metricsPort().orElseThrow() + "/metrics"))
                    .timeout(Duration.ofSeconds(5))
                    .build();
            String labels = "{vm=\"" + VM + "\",location=\"local\",policy=\"db\"}";
            String[] text = {""};
            await().atMost(DEADLINE).pollInterval(Duration.ofMillis(500)).until(() -> {
                text[0] =
                        http.send(scrape, HttpResponse.BodyHandlers.ofString()).body();
                return sample(text[0], "tidemark_budget_used_bytes" + labels) >= 0;
            });
            assertThat(sample(text[0], "tidemark_budget_bytes" + labels)).isEqualTo(BUDGET);
            assertThat(sample(text[0], "tidemark_budget_used_bytes" + labels)).isEqualTo(used);
        }
    }

    private static long sample(String text, String series) {
        Matcher m =
                Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
        return m.find() ? (long) Double.parseDouble(m.group(1)) : -1;
    }

    /**
     * Commits one full point of {@code vm} ({@code chunks} chunks of random data) into the default
     * primary repository of an engine whose {@code data:} is {@code data}, before the engine starts.
     */
    static Manifest commitFullPoint(Path data, String vm, String policy, int chunks, Random random) throws Exception {
        try (ObjectTarget primary = new FileObjectTarget(Files.createDirectories(data.resolve("repo")))) {
            Repository repo = Repository.openOrInit(primary, RepositoryConfig.defaults());
            return commitFullPoint(repo, vm, policy, chunks, random);
        }
    }

    private static Manifest commitFullPoint(Repository repo, String vm, String policy, int chunks, Random random) {
        int chunkSize = repo.config().chunkSize();
        long size = (long) chunks * chunkSize;
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        byte[] data = new byte[chunkSize];
        for (int c = 0; c < chunks; c++) {
            random.nextBytes(data);
            index.set(c, repo.putChunk(data, chunkSize).digest());
        }
        Instant at = Instant.now().minusSeconds(60);
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(at, random),
                vm,
                "hv1",
                "job-1",
                at,
                at,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                policy,
                Optional.empty(),
                List.of(new DiskEntry("sda", size, chunkSize, index.finish().hex(), "tm", Optional.empty(), 0, 0)));
        repo.commit(m);
        return m;
    }
}
