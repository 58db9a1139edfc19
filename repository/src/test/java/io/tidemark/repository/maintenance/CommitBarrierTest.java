package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.file.FileSync;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The commit of a restore point on a file repository (ADR 21): its manifest is written only after
 * the barrier has made every chunk, page and root durable (their bytes and their directories), and
 * a barrier that fails leaves no restore point, now or after a restart.
 */
class CommitBarrierTest {

    @TempDir
    Path root;

    /** The fsyncs in order, as "file KEY" (of the object a temporary file is for) and "dir PATH". */
    private final List<String> events = Collections.synchronizedList(new ArrayList<>());

    private final AtomicBoolean failChunkFsync = new AtomicBoolean();

    private final FileSync recording = new FileSync() {
        @Override
        public void file(Path file) throws IOException {
            String name = file.getFileName().toString();
            String key = root.relativize(
                            file.resolveSibling(name.substring(0, name.indexOf(FileObjectTarget.TEMP_MARKER))))
                    .toString();
            if (failChunkFsync.get() && key.startsWith(ObjectKeys.CHUNKS)) {
                throw new IOException("Input/output error");
            }
            FileSync.SYSTEM.file(file);
            events.add("file " + key);
        }

        @Override
        public void directory(Path dir) throws IOException {
            FileSync.SYSTEM.directory(dir);
            events.add("dir " + root.relativize(dir));
        }
    };

    private int firstIndexOf(String prefix) {
        synchronized (events) {
            return IntStream.range(0, events.size())
                    .filter(i -> events.get(i).startsWith(prefix))
                    .findFirst()
                    .orElse(-1);
        }
    }

    private int lastIndexOf(String prefix) {
        synchronized (events) {
            return IntStream.range(0, events.size())
                    .filter(i -> events.get(i).startsWith(prefix))
                    .reduce((a, b) -> b)
                    .orElse(-1);
        }
    }

    @Test
    void theManifestIsWrittenOnlyAfterEveryObjectItReferencesAndItsDirectoryAreDurable() {
        Repository repo = Repository.openOrInit(new FileObjectTarget(root, recording), GarbageCollectorTest.CONFIG);
        Points points = new Points(repo, "vm1", 8, 7);
        Points.Pending p = points.write(Optional.empty(), List.of(0, 1, 2, 3, 4, 5));
        int writtenBeforeCommit = events.size();

        repo.commit(p.manifest());

        int manifest = firstIndexOf("file " + ObjectKeys.MANIFESTS);
        assertThat(manifest).as("the manifest was fsynced").isGreaterThanOrEqualTo(writtenBeforeCommit);
        for (String kind : List.of(ObjectKeys.CHUNKS, ObjectKeys.PAGES, ObjectKeys.ROOTS)) {
            assertThat(firstIndexOf("file " + kind)).as("%s were fsynced", kind).isGreaterThanOrEqualTo(0);
            assertThat(lastIndexOf("file " + kind))
                    .as("%s durable before the manifest", kind)
                    .isLessThan(manifest);
            assertThat(lastIndexOf("dir " + kind))
                    .as("%s directories durable before the manifest", kind)
                    .isGreaterThanOrEqualTo(0)
                    .isLessThan(manifest);
        }
        assertThat(Repository.open(new FileObjectTarget(root)).manifests("vm1")).hasSize(1);
    }

    @Test
    void aBarrierThatFailsLeavesNoRestorePointNowOrAfterARestart() {
        Repository repo = Repository.openOrInit(new FileObjectTarget(root, recording), GarbageCollectorTest.CONFIG);
        Points points = new Points(repo, "vm1", 8, 7);
        failChunkFsync.set(true);
        Points.Pending p = points.write(Optional.empty(), List.of(0, 1, 2, 3));

        assertThatThrownBy(() -> repo.commit(p.manifest()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("fsync");
        // committing again (a caller that retries) must not publish a point whose chunks were dropped
        failChunkFsync.set(false);
        assertThatThrownBy(() -> repo.commit(p.manifest())).isInstanceOf(PermanentException.class);

        assertThat(firstIndexOf("file " + ObjectKeys.MANIFESTS)).isEqualTo(-1);
        Repository restarted = Repository.open(new FileObjectTarget(root));
        assertThat(restarted.manifests("vm1")).isEmpty();
        assertThat(new FileObjectTarget(root).list(ObjectKeys.CHUNKS)).isEmpty();
    }
}
