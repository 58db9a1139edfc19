package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.RestorePointSelector;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A corrupt or truncated manifest is reported with its key and never hides the readable points. */
class UnreadableManifestTest {

    private final InMemoryObjectTarget memory = new InMemoryObjectTarget("primary");
    private final Repository writer = Repository.openOrInit(memory, GarbageCollectorTest.CONFIG);
    private final Points points = new Points(writer, "vm1", 8, 11);

    /** Replaces the stored manifest of {@code p} with its first half, as a torn copy would leave it. */
    private String truncate(Points.Pending p) {
        String key = ObjectKeys.manifest("vm1", p.manifest().id());
        byte[] whole = memory.get(key).orElseThrow();
        memory.delete(key);
        memory.putIfAbsent(key, Arrays.copyOf(whole, whole.length / 2));
        return key;
    }

    @Test
    void aTruncatedOldManifestLeavesTheOtherPointsListedAndTheLatestSelectable() {
        Points.Pending old = points.full(4);
        Points.Pending mid = points.incremental(old, List.of(1));
        Points.Pending newest = points.incremental(mid, List.of(2));
        String key = truncate(old);

        Repository repo = Repository.open(memory); // a fresh process: nothing cached
        assertThat(repo.manifests("vm1"))
                .extracting(Manifest::id)
                .containsExactly(mid.manifest().id(), newest.manifest().id());
        Repository.Listing listing = repo.listing("vm1");
        assertThat(listing.unreadable()).singleElement().satisfies(u -> {
            assertThat(u.key()).isEqualTo(key);
            assertThat(u.id()).isEqualTo(old.manifest().id());
            assertThat(u.reason()).contains(key);
        });
        assertThat(repo.latest("vm1"))
                .map(Manifest::id)
                .contains(newest.manifest().id());

        RestorePointSelector selector = new RestorePointSelector(Clock.systemUTC());
        assertThat(selector.select(repo, "vm1", new RestorePointSelector.Newest())
                        .id())
                .isEqualTo(newest.manifest().id());
        assertThatThrownBy(() -> selector.select(
                        repo,
                        "vm1",
                        new RestorePointSelector.ById(old.manifest().id())))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("cannot be read")
                .hasMessageContaining(key);
    }

    @Test
    void verifyNamesTheUnreadableManifestAndStillChecksTheOthers() {
        Points.Pending old = points.full(4);
        Points.Pending newest = points.incremental(old, List.of(1));
        String key = truncate(old);

        Verifier.Report r = new Verifier(Repository.open(memory), 2)
                .verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
        assertThat(r.manifests()).isEqualTo(1);
        assertThat(r.problems()).singleElement().satisfies(p -> {
            assertThat(p.key()).isEqualTo(key);
            assertThat(p.kind()).isEqualTo(Problem.Kind.BAD_MANIFEST);
            assertThat(p.affected()).containsExactly(points.ref(old));
        });
        assertThat(r.chunks()).isPositive(); // the readable point's objects were checked
        assertThat(newest).isNotNull();
    }

    @Test
    void onlyUnreadableManifestsSaySoInsteadOfNoPoints() {
        Points.Pending only = points.full(2);
        String key = truncate(only);
        Repository repo = Repository.open(memory);
        assertThatThrownBy(() -> new RestorePointSelector(Clock.systemUTC())
                        .select(repo, "vm1", new RestorePointSelector.Newest()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no readable restore point")
                .hasMessageContaining(key);
    }

    @Test
    void aManifestHalfWrittenByAKilledProcessIsNeverVisibleOnAFileTarget(@TempDir Path dir) throws Exception {
        try (FileObjectTarget files = new FileObjectTarget(dir)) {
            Repository repo = Repository.openOrInit(files, GarbageCollectorTest.CONFIG);
            Points onFiles = new Points(repo, "vm1", 8, 3);
            Points.Pending committed = onFiles.full(2);
            Points.Pending pending = onFiles.write(java.util.Optional.of(committed), List.of(3));
            // what a process killed in the middle of commit() leaves: a partial temporary file
            Path manifest =
                    dir.resolve(ObjectKeys.manifest("vm1", pending.manifest().id()));
            Files.write(
                    manifest.resolveSibling(manifest.getFileName() + FileObjectTarget.TEMP_MARKER + "1234"),
                    "{\"formatVersion\":1,\"id\":".getBytes(java.nio.charset.StandardCharsets.UTF_8));

            Repository reopened = Repository.open(files);
            assertThat(reopened.listing("vm1").unreadable()).isEmpty();
            assertThat(reopened.manifests("vm1"))
                    .extracting(Manifest::id)
                    .containsExactly(committed.manifest().id());
            assertThat(reopened.hasManifest("vm1", pending.manifest().id())).isFalse();
        }
    }
}
