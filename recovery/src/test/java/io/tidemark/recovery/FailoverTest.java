package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FailoverTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

    @TempDir
    Path dir;

    private final Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());

    @Test
    void aDryRunPlansEveryVmInGroupOrderFromItsChosenPointAndWritesNothing() {
        int size = repo.config().chunkSize();
        SyntheticPoints.commit(repo, "db-1", T0, SyntheticPoints.image(size, 1));
        Manifest db2 = SyntheticPoints.commit(repo, "db-1", T0.plusSeconds(900), SyntheticPoints.image(size, 2));
        Manifest web = SyntheticPoints.commit(repo, "web-1", T0, SyntheticPoints.image(size, 3));
        Path work = dir.resolve("dr");
        RecoveryPlan plan = plan(work, "apps");
        Failover failover = failover(work);

        Map<String, Manifest> points = failover.points(plan);
        Failover.DryRun dry = failover.dryRun(plan, points);

        assertThat(dry.vms())
                .extracting(Failover.PlannedVm::vm, Failover.PlannedVm::group, p -> p.point()
                        .id())
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("db-1", "data", db2.id()),
                        org.assertj.core.groups.Tuple.tuple("web-1", "apps", web.id()));
        assertThat(dry.vms()).noneMatch(Failover.PlannedVm::running);
        assertThat(dry.vms().get(0).dir()).isEqualTo(work.resolve("db-1"));
        assertThat(dry.vms().get(0).disks())
                .containsExactly(work.resolve("db-1").resolve("sd0.raw"));
        assertThat(dry.problems()).noneMatch(p -> p.contains("work-dir") || p.contains("writable"));
        assertThat(work).doesNotExist();
    }

    @Test
    void aDryRunNamesASocketPathTooLongAndAWorkDirThatCannotBeCreated() throws Exception {
        SyntheticPoints.commit(
                repo, "db-1", T0, SyntheticPoints.image(repo.config().chunkSize(), 1));
        SyntheticPoints.commit(
                repo, "web-1", T0, SyntheticPoints.image(repo.config().chunkSize(), 3));
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Path work = file.resolve("x".repeat(100));
        RecoveryPlan plan = plan(work, "apps");
        Failover failover = failover(work);

        Failover.DryRun dry = failover.dryRun(plan, failover.points(plan));

        assertThat(dry.ok()).isFalse();
        assertThat(dry.problems())
                .anySatisfy(p -> assertThat(p).contains("is not a directory, so " + work + " cannot be created"))
                .anySatisfy(p -> assertThat(p)
                        .startsWith("the QMP socket path of db-1 (")
                        .endsWith("is longer than 107 bytes; choose a shorter work-dir"));
    }

    private Failover failover(Path work) {
        return new Failover(repo, new DrSite(work), 2, new FakeClock(T0.plusSeconds(3600)), RecoveryProgress.NONE);
    }

    private RecoveryPlan plan(Path work, String secondGroup) {
        String yaml =
                """
                site: dr-test
                source: offsite
                work-dir: %s
                groups:
                  - name: data
                    vms:
                      - {name: db-1, memory: 64}
                  - name: %s
                    vms:
                      - {name: web-1, memory: 64}
                """
                        .formatted(work, secondGroup);
        return new RecoveryPlanParser().parse(dir.resolve("plan.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
    }
}
