package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DrillTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

    @TempDir
    Path dir;

    private final InMemoryObjectTarget target = new InMemoryObjectTarget();
    private final Repository repo = Repository.openOrInit(target, RepositoryConfig.defaults());

    @Test
    void aDrillRestoresTheNewestPointChecksItsDigestsRecordsTheResultAndLeavesNoScratch() {
        int size = 4 * repo.config().chunkSize();
        SyntheticPoints.commit(repo, "web-1", T0, SyntheticPoints.image(size, 0x11));
        Manifest newest = SyntheticPoints.commit(repo, "web-1", T0.plusSeconds(600), SyntheticPoints.image(size, 0x22));
        Map<String, long[]> progress = new ConcurrentHashMap<>();
        RecoveryProgress listener = new RecoveryProgress() {
            @Override
            public void restored(String label, long done, long total) {
                progress.put(label, new long[] {done, total});
            }
        };
        Path scratch = dir.resolve("scratch");

        Drill.DrillResult r = new Drill(new FakeClock(T0.plusSeconds(900)), listener)
                .run(repo, new DrillLog(target), request(scratch, Optional.of(Duration.ofMinutes(10))));

        assertThat(r.passed()).isTrue();
        assertThat(r.rtoViolated()).isFalse();
        assertThat(r.boot()).isEmpty();
        DrillRecord rec = r.record();
        assertThat(rec.restorePoint()).isEqualTo(newest.id());
        assertThat(rec.check()).isEqualTo(DiskCheck.DIGESTS);
        assertThat(rec.detail()).isEqualTo("sd0: chunk-digests passed\n4 chunks match the index");
        assertThat(rec.rtoLimitMillis()).isEqualTo(600_000L);
        assertThat(rec.at()).isEqualTo(T0.plusSeconds(900));
        assertThat(new DrillLog(target).latest("web-1")).contains(rec);
        assertThat(progress).containsOnlyKeys("drill sd0");
        assertThat(progress.get("drill sd0")).containsExactly(size, size);
        assertThat(scratch).isEmptyDirectory();
    }

    @Test
    void aVmWithoutAPointIsAPermanentFailureThatSaysWhereToLookAndRecordsNothing() {
        assertThatThrownBy(() -> new Drill(new FakeClock(T0), RecoveryProgress.NONE)
                        .run(repo, new DrillLog(target), request(dir, Optional.empty())))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no restore point of VM 'web-1' in")
                .hasMessageContaining("`tidemark list` shows what there is");
        assertThat(new DrillLog(target).latest("web-1")).isEmpty();
    }

    @Test
    void aBootDirectoryWithoutAKernelFailsBeforeAnythingIsRestored() throws Exception {
        SyntheticPoints.commit(
                repo, "web-1", T0, SyntheticPoints.image(repo.config().chunkSize(), 0x11));
        Path empty = Files.createDirectories(dir.resolve("no-kernel"));
        Path scratch = dir.resolve("scratch");
        Drill.Request boot = new Drill.Request(
                "web-1", "local", Optional.empty(), scratch, 2, Optional.of(empty), Duration.ofMinutes(1));
        assertThatThrownBy(
                        () -> new Drill(new FakeClock(T0), RecoveryProgress.NONE).run(repo, new DrillLog(target), boot))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("build-tiny-guest.sh");
        assertThat(scratch).doesNotExist();
        assertThat(new DrillLog(target).latest("web-1")).isEmpty();
    }

    @Test
    void theRtoLimitIsTheStrictestOfThePoliciesThatSelectTheVmByName() throws Exception {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve("a.yaml"),
                "name: a\nvms: {names: [web-1]}\nschedule: {interval: 1h}\nrpo: 2h\nrto: 30m\n");
        Files.writeString(
                policies.resolve("b.yaml"),
                "name: b\nvms: {globs: [web-*]}\nschedule: {interval: 1h}\nrpo: 2h\nrto: 10m\n");
        Files.writeString(
                policies.resolve("c.yaml"),
                "name: c\nvms: {names: [db-1]}\nschedule: {interval: 1h}\nrpo: 2h\nrto: 1m\n");
        PolicySet set = new PolicyParser().loadDirectory(policies);
        assertThat(Drill.rtoLimit(set, "web-1")).contains(Duration.ofMinutes(10));
        assertThat(Drill.rtoLimit(set, "mail-1")).isEmpty();
        assertThat(Drill.rtoLimit(PolicySet.empty(), "web-1")).isEmpty();
    }

    private static Drill.Request request(Path scratch, Optional<Duration> limit) {
        return new Drill.Request("web-1", "local", limit, scratch, 2, Optional.empty(), Duration.ofMinutes(1));
    }
}
