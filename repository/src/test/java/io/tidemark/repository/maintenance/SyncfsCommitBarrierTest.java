package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.targets.file.Durability;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.file.FileSync;
import io.tidemark.targets.file.FileSystemSync;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The commit of a restore point on a file repository with {@code durability: filesystem} (ADR 25):
 * no chunk, page or root is fsynced on its own, a syncfs precedes every link and another one the
 * manifest, a failed syncfs leaves no restore point, and with the real {@code syncfs(2)} a full and
 * a patched incremental restore byte for byte after a restart.
 */
class SyncfsCommitBarrierTest {

    @TempDir
    Path root;

    /** Every call in order: "file KEY", "dir PATH", "syncfs N" (N object names visible then). */
    private final List<String> events = Collections.synchronizedList(new ArrayList<>());

    private final AtomicBoolean failSyncfs = new AtomicBoolean();

    private final FileSync fsyncs = new FileSync() {
        @Override
        public void file(Path file) throws IOException {
            String name = file.getFileName().toString();
            events.add("file "
                    + root.relativize(
                            file.resolveSibling(name.substring(0, name.indexOf(FileObjectTarget.TEMP_MARKER)))));
            FileSync.SYSTEM.file(file);
        }

        @Override
        public void directory(Path dir) throws IOException {
            events.add("dir " + root.relativize(dir));
            FileSync.SYSTEM.directory(dir);
        }
    };

    private final FileSystemSync syncfs = dir -> {
        FileSystemSync.Handle real = FileSystemSync.SYSTEM.open(dir);
        return new FileSystemSync.Handle() {
            @Override
            public void sync() throws IOException {
                events.add("syncfs " + objectNames());
                if (failSyncfs.get()) {
                    throw new FileSystemException(dir.toString(), null, "syncfs: Input/output error");
                }
                real.sync();
            }

            @Override
            public void close() throws IOException {
                real.close();
            }
        };
    };

    private long objectNames() throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile)
                    .map(p -> root.relativize(p).toString())
                    .filter(k -> !k.contains(FileObjectTarget.TEMP_MARKER))
                    .filter(k -> k.startsWith(ObjectKeys.CHUNKS)
                            || k.startsWith(ObjectKeys.PAGES)
                            || k.startsWith(ObjectKeys.ROOTS))
                    .count();
        }
    }

    private int index(String prefix, boolean last) {
        synchronized (events) {
            int found = -1;
            for (int i = 0; i < events.size(); i++) {
                if (events.get(i).startsWith(prefix)) {
                    found = i;
                    if (!last) {
                        break;
                    }
                }
            }
            return found;
        }
    }

    @Test
    void theManifestIsWrittenAfterASyncfsThatFollowsEveryLinkAndNoObjectIsFsyncedOnItsOwn() throws IOException {
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(root, fsyncs, syncfs, Durability.FILESYSTEM), GarbageCollectorTest.CONFIG);
        Points points = new Points(repo, "vm1", 8, 7);
        Points.Pending p = points.write(Optional.empty(), List.of(0, 1, 2, 3, 4, 5));
        int before = events.size();

        repo.commit(p.manifest());

        List<String> commit = new ArrayList<>(events.subList(before, events.size()));
        for (String kind : List.of(ObjectKeys.CHUNKS, ObjectKeys.PAGES, ObjectKeys.ROOTS)) {
            assertThat(commit).as("no %s fsynced on its own", kind).noneMatch(e -> e.startsWith("file " + kind));
        }
        long objects = objectNames();
        assertThat(objects).isPositive();
        assertThat(commit.stream().filter(e -> e.startsWith("syncfs")))
                .as("one syncfs before any link, one after the last")
                .containsExactly("syncfs 0", "syncfs " + objects);
        int manifest = index("file " + ObjectKeys.MANIFESTS, false);
        assertThat(index("syncfs " + objects, true)).isGreaterThanOrEqualTo(0).isLessThan(manifest);
        assertThat(Repository.open(new FileObjectTarget(root)).manifests("vm1")).hasSize(1);
    }

    @Test
    void aFailedSyncfsLeavesNoRestorePointNowOrAfterARestart() throws IOException {
        Repository repo = Repository.openOrInit(
                new FileObjectTarget(root, fsyncs, syncfs, Durability.FILESYSTEM), GarbageCollectorTest.CONFIG);
        Points points = new Points(repo, "vm1", 8, 7);
        failSyncfs.set(true);
        Points.Pending p = points.write(Optional.empty(), List.of(0, 1, 2, 3));

        assertThatThrownBy(() -> repo.commit(p.manifest()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("syncfs")
                .hasMessageContaining("restart");
        failSyncfs.set(false);
        assertThatThrownBy(() -> repo.commit(p.manifest())).isInstanceOf(PermanentException.class);

        assertThat(index("file " + ObjectKeys.MANIFESTS, false)).isEqualTo(-1);
        assertThat(objectNames()).isZero();
        Repository restarted = Repository.open(new FileObjectTarget(root));
        assertThat(restarted.manifests("vm1")).isEmpty();
    }

    @Test
    void withTheRealSyncfsAFullAndAPatchedIncrementalRestoreByteForByteAfterARestart(@TempDir Path tmp)
            throws IOException {
        Repository repo =
                Repository.openOrInit(new FileObjectTarget(root, Durability.FILESYSTEM), GarbageCollectorTest.CONFIG);
        Points points = new Points(repo, "vm1", 16, 15);
        Points.Pending full = points.full(8);
        Points.Pending inc = points.patched(full, Map.of(1, 4096, 3, 0, 5, 100), 4096);

        Repository restarted = Repository.open(new FileObjectTarget(root));
        assertThat(restarted.manifests("vm1")).hasSize(2);
        for (Points.Pending p : List.of(full, inc)) {
            Path out = tmp.resolve(p.manifest().id() + ".raw");
            Restorer.Result r =
                    new Restorer(restarted, 2).restoreDisk(p.manifest(), Points.DISK, out, Restorer.Progress.NONE);
            assertThat(r.sha256()).isEqualTo(Points.sha256(p.image()));
        }
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(f -> f.getFileName().toString().contains(FileObjectTarget.TEMP_MARKER)))
                    .as("no temporary file left")
                    .isEmpty();
        }
    }
}
