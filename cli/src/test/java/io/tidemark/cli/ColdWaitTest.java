package io.tidemark.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.recovery.ColdRestore;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.InMemoryColdStorage;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code restore --cold-wait} before the restore reads: a point with two of its three chunks in
 * GLACIER, in a store that models a 4 h archive delay, opened through the retry wrapper as the CLI
 * opens targets; waiting on a fake clock.
 */
class ColdWaitTest {

    private static final Instant NOW = Instant.parse("2026-12-01T00:00:00Z");
    private final FakeClock clock = new FakeClock(NOW);
    private final InMemoryColdStorage store = new InMemoryColdStorage(clock, Duration.ofHours(4));
    private final ObjectTarget opened = RetryingObjectTarget.failingFastUntilReached(
            store, RetryingObjectTarget.Backoff.upTo(Duration.ofSeconds(1)));
    private final Repository repo = Repository.openOrInit(opened, RepositoryConfig.defaults());
    private final Random random = new Random(3);
    private final ColdWait cold = new ColdWait(clock, clock::advance, Duration.ofMinutes(1));
    private final ByteArrayOutputStream text = new ByteArrayOutputStream();
    private final PrintStream progress = new PrintStream(text, true, StandardCharsets.UTF_8);

    private byte[] bytes() {
        byte[] b = new byte[4096];
        random.nextBytes(b);
        return b;
    }

    /** A point of three chunks, the first two moved to GLACIER. */
    private Manifest archivedPoint() {
        return archivedPoint("sda");
    }

    /** A point with a disk per name, each of three chunks, the first two of each moved to GLACIER. */
    private Manifest archivedPoint(String... diskNames) {
        int chunk = repo.config().chunkSize();
        List<DiskEntry> disks = new java.util.ArrayList<>();
        for (String name : diskNames) {
            byte[][] chunks = {bytes(), bytes(), bytes()};
            DiskIndexBuilder index = repo.newIndex(3L * chunk, Optional.empty());
            for (int i = 0; i < 3; i++) {
                Digest d = repo.putChunk(chunks[i], chunks[i].length).digest();
                index.set(i, d);
                if (i < 2) {
                    store.transition(ObjectKeys.chunk(d), "GLACIER");
                }
            }
            disks.add(new DiskEntry(name, 3L * chunk, chunk, index.finish().hex(), "c", Optional.empty(), 0, 0));
        }
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(NOW, random),
                "db-1",
                "hv1",
                "j-1",
                NOW,
                NOW,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "db",
                Optional.empty(),
                disks);
        repo.commit(m);
        return m;
    }

    @Test
    void onlyTheNamedDiskIsMadeReadable() throws Exception {
        Manifest m = archivedPoint("sda", "sdb");
        ColdWaitOption option = new ColdWaitOption();
        option.coldWait = "6h";
        option.waiter = cold;
        Optional<ColdRestore.Result> r = option.prepare(opened, repo, List.of(m), ColdWaitOption.disk("sdb"), progress);
        assertThat(r.get().objects()).isEqualTo(3);
        assertThat(store.restoreRequests()).isEqualTo(2);
        assertThat(io.tidemark.replicator.TierSweep.chunkKeys(
                                repo, m, d -> d.name().equals("sda"))
                        .stream()
                        .filter(k -> !store.placement(k).readable()))
                .hasSize(2); // sda's archived chunks were not asked for
    }

    @Test
    void thePointsOfAReplicationAreRestoredSideBySideInOneWait() throws Exception {
        List<Manifest> points = List.of(archivedPoint(), archivedPoint(), archivedPoint());
        ColdWaitOption option = new ColdWaitOption();
        option.coldWait = "6h";
        option.waiter = cold;
        Optional<ColdRestore.Result> r = option.prepare(opened, repo, points, ColdWaitOption.disk(null), progress);
        assertThat(r.get().archived()).isEqualTo(6);
        assertThat(store.restoreRequests()).isEqualTo(6);
        assertThat(r.get().waited()).isLessThan(Duration.ofHours(5)); // one archive delay, not three

        option.coldWait = null; // without --cold-wait nothing is looked up
        int heads = store.heads();
        assertThat(option.prepare(opened, repo, points, ColdWaitOption.disk(null), progress))
                .isEmpty();
        assertThat(store.heads()).isEqualTo(heads);
    }

    @Test
    void anUnfinishedWaitForSeveralPointsNamesThem() {
        List<Manifest> points = List.of(archivedPoint(), archivedPoint());
        assertThatThrownBy(() -> cold.prepare(opened, repo, points, d -> true, Duration.ofHours(1), progress))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining(
                        "4 of 6 chunks of 2 restore points (" + points.get(0).id())
                .hasMessageContaining("run the same command again later");
    }

    @ParameterizedTest
    @ValueSource(strings = {"restore", "restore-instant", "files ls", "files get", "drill", "replicate"})
    void everyCommandThatReadsChunksOffersTheSameColdWait(String path) {
        picocli.CommandLine.Model.OptionSpec option =
                CommandTreeTest.command(path).getCommandSpec().findOption("--cold-wait");
        assertThat(option).as("tidemark %s --cold-wait", path).isNotNull();
        assertThat(((java.lang.reflect.Field) option.userObject()).getDeclaringClass())
                .as("the shared option, not a copy")
                .isEqualTo(ColdWaitOption.class);
    }

    @Test
    void requestsTheArchivedChunksWaitsForThemAndSaysHowLong() throws Exception {
        Manifest m = archivedPoint();
        Optional<ColdRestore.Result> r = cold.prepare(opened, repo, m, Duration.ofHours(6), progress);
        assertThat(r).isPresent();
        assertThat(r.get().archived()).isEqualTo(2);
        assertThat(r.get().requested()).isEqualTo(2);
        assertThat(store.restoreRequests()).isEqualTo(2);
        assertThat(r.get().waited())
                .isBetween(Duration.ofHours(4), Duration.ofHours(4).plusMinutes(1));
        assertThat(text.toString(StandardCharsets.UTF_8))
                .contains("cold restore: 1/3 chunks readable, 2 restoring, 2 restore requests, waited 0s")
                .contains("cold restore: 2 archived chunks readable after 4h");
        for (var key : io.tidemark.replicator.TierSweep.chunkKeys(repo, m)) {
            assertThat(store.placement(key).readable()).as(key).isTrue();
        }
    }

    @Test
    void aBoundedWaitFailsRetriablyNamingWhatIsStillArchivedAndARunLaterWaitsOnlyForTheRest() throws Exception {
        Manifest m = archivedPoint();
        assertThatThrownBy(() -> cold.prepare(opened, repo, m, Duration.ofHours(1), progress))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("2 of 3 chunks of restore point " + m.id() + " are still archived")
                .hasMessageContaining("after waiting 1h")
                .hasMessageContaining("2 restore requests sent now")
                .hasMessageContaining("longer --cold-wait");

        clock.advance(Duration.ofHours(3)); // the requests stood meanwhile
        Optional<ColdRestore.Result> r = cold.prepare(opened, repo, m, Duration.ZERO, progress);
        assertThat(r.get().requested()).isZero();
        assertThat(r.get().complete()).isTrue();
        assertThat(store.restoreRequests()).isEqualTo(2);
    }

    @Test
    void aTargetWithoutStorageClassesNeedsNothing() throws Exception {
        InMemoryObjectTarget plain = new InMemoryObjectTarget();
        Repository r = Repository.openOrInit(plain, RepositoryConfig.defaults());
        assertThat(cold.prepare(plain, r, archivedPoint(), Duration.ZERO, progress))
                .isEmpty();
    }
}
