package io.tidemark.targets.file;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier of ADR 21, with a {@link FileSync} that records or fails the fsyncs: a final name
 * appears only after the fsync of its bytes, its directory is fsynced after it appears and before
 * the barrier returns, a failed fsync publishes nothing and stops later barriers, and a name another
 * writer linked recently has its directory fsynced before this writer relies on it.
 */
class BatchedDurabilityTest {

    @TempDir
    Path root;

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Records each fsync in order, with the object names that existed when it was called. */
    private final class Recording implements FileSync {
        final List<String> events = Collections.synchronizedList(new ArrayList<>());
        /** Final names present when each fsync of a temporary file ran. */
        final Set<String> namesSeenAtFileSync = ConcurrentHashMap.newKeySet();
        /** Final names present (in the directory being fsynced) at each directory fsync. */
        final Set<String> namesSeenAtDirSync = ConcurrentHashMap.newKeySet();

        @Override
        public void file(Path file) throws IOException {
            String name = file.getFileName().toString();
            String object = name.substring(0, name.indexOf(FileObjectTarget.TEMP_MARKER));
            if (Files.exists(file.resolveSibling(object))) {
                namesSeenAtFileSync.add(
                        root.relativize(file.resolveSibling(object)).toString());
            }
            events.add("file " + root.relativize(file.resolveSibling(object)));
            FileSync.SYSTEM.file(file);
        }

        @Override
        public void directory(Path dir) throws IOException {
            try (Stream<Path> names = Files.list(dir)) {
                names.filter(p -> !p.getFileName().toString().contains(FileObjectTarget.TEMP_MARKER))
                        .forEach(p -> namesSeenAtDirSync.add(root.relativize(p).toString()));
            }
            events.add("dir " + (dir.equals(root) ? "" : root.relativize(dir).toString()));
            FileSync.SYSTEM.directory(dir);
        }
    }

    @Test
    void noObjectNameAppearsBeforeItsBytesAreDurableAndEachDirectoryIsFsyncedAfterItsNames() {
        Recording sync = new Recording();
        FileObjectTarget writer = new FileObjectTarget(root, sync);
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            String key = "chunks/" + (i % 4) + "/k" + i;
            keys.add(key);
            assertThat(writer.putIfAbsentDeferred(key, bytes("v" + i))).isTrue();
        }
        writer.flush();

        for (String key : keys) {
            assertThat(sync.events).as("the bytes of %s were fsynced", key).contains("file " + key);
            String dir = "dir " + key.substring(0, key.lastIndexOf('/'));
            assertThat(sync.events.indexOf(dir))
                    .as("the directory of %s was fsynced after its bytes", key)
                    .isGreaterThan(sync.events.indexOf("file " + key));
        }
        assertThat(sync.namesSeenAtFileSync)
                .as("names that existed before their bytes were durable")
                .isEmpty();
        assertThat(sync.namesSeenAtDirSync)
                .as("every name existed when its directory was fsynced")
                .containsAll(keys);
        assertThat(sync.events.stream().filter(e -> e.equals("dir chunks/0"))).hasSize(1); // once per batch
    }

    @Test
    void aFailedObjectFsyncPublishesNothingAndRefusesLaterBarriersUntilRestart() throws IOException {
        AtomicInteger calls = new AtomicInteger();
        FileSync failingOnce = new FileSync() {
            @Override
            public void file(Path file) throws IOException {
                if (calls.incrementAndGet() == 3) {
                    throw new IOException("Input/output error");
                }
                FileSync.SYSTEM.file(file);
            }

            @Override
            public void directory(Path dir) throws IOException {
                FileSync.SYSTEM.directory(dir);
            }
        };
        FileObjectTarget writer = new FileObjectTarget(root, failingOnce);
        for (int i = 0; i < 5; i++) {
            writer.putIfAbsentDeferred("chunks/a/k" + i, bytes("v" + i));
        }

        assertThatThrownBy(writer::flush)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("fsync")
                .hasMessageContaining("restart");
        FileObjectTarget other = new FileObjectTarget(root);
        assertThat(other.list("chunks/"))
                .as("no object of the failed batch is visible")
                .isEmpty();
        assertThat(writer.exists("chunks/a/k0"))
                .as("the writer no longer relies on them")
                .isFalse();
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(Files::isRegularFile))
                    .as("temporary files removed")
                    .isEmpty();
        }
        // a backup that relied on a dropped object must not commit: every later barrier fails
        assertThatThrownBy(writer::flush).isInstanceOf(PermanentException.class);
        assertThatThrownBy(() -> writer.putIfAbsentDeferred("chunks/a/k9", bytes("v9")))
                .isInstanceOf(PermanentException.class);

        FileObjectTarget restarted = new FileObjectTarget(root);
        assertThat(restarted.putIfAbsentDeferred("chunks/a/k0", bytes("v0"))).isTrue();
        restarted.flush();
        assertThat(other.get("chunks/a/k0"))
                .hasValueSatisfying(b -> assertThat(b).isEqualTo(bytes("v0")));
    }

    @Test
    void aFailedDirectoryFsyncFailsTheBarrierAndTheNextOneFsyncsItAgain() throws IOException {
        Files.createDirectories(root.resolve("chunks/a"));
        AtomicInteger dirCalls = new AtomicInteger();
        Recording recording = new Recording();
        FileSync failingFirstDir = new FileSync() {
            @Override
            public void file(Path file) throws IOException {
                recording.file(file);
            }

            @Override
            public void directory(Path dir) throws IOException {
                if (dirCalls.incrementAndGet() == 1) {
                    throw new IOException("Input/output error");
                }
                recording.directory(dir);
            }
        };
        FileObjectTarget writer = new FileObjectTarget(root, failingFirstDir);
        writer.putIfAbsentDeferred("chunks/a/k0", bytes("v0"));
        assertThatThrownBy(writer::flush).isInstanceOf(RetriableException.class);
        assertThat(recording.events).doesNotContain("dir chunks/a");

        writer.flush(); // nothing deferred left, but the directory is still owed its fsync
        assertThat(recording.events).contains("dir chunks/a");
    }

    @Test
    void aNameAnotherWriterLinkedRecentlyHasItsDirectoryFsyncedAtTheBarrierThatReliesOnIt() throws IOException {
        // another writer linked this name and has not fsynced its directory yet (or died before it)
        Files.createDirectories(root.resolve("chunks/b"));
        Files.write(root.resolve("chunks/b/k1"), bytes("v1"));
        Recording sync = new Recording();
        FileObjectTarget writer = new FileObjectTarget(root, sync);

        assertThat(writer.exists("chunks/b/k1")).isTrue(); // a backup deduplicates against it
        writer.flush(); // the barrier before its manifest

        assertThat(sync.events).containsExactly("dir chunks/b");
    }
}
