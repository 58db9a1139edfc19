package io.tidemark.targets.file;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The barrier of {@code durability: filesystem} (ADR 25), with ports that record or fail the calls:
 * no object is fsynced, one syncfs comes before any name is linked and one after the last link, a
 * failed syncfs publishes nothing and refuses later writes until restart; and the real {@code
 * syncfs(2)} through JNA on this machine's file system.
 */
class FileSystemDurabilityTest {

    @TempDir
    Path root;

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Every call in order: "file K", "dir D", "open", "syncfs N" (N: object names visible then). */
    private final List<String> events = Collections.synchronizedList(new ArrayList<>());

    private final AtomicInteger failSyncfs = new AtomicInteger(-1);

    private final FileSync fsyncs = new FileSync() {
        @Override
        public void file(Path file) throws IOException {
            events.add("file " + root.relativize(file));
            FileSync.SYSTEM.file(file);
        }

        @Override
        public void directory(Path dir) throws IOException {
            events.add("dir " + root.relativize(dir));
            FileSync.SYSTEM.directory(dir);
        }
    };

    private final FileSystemSync syncfs = dir -> {
        events.add("open " + dir);
        return new FileSystemSync.Handle() {
            int calls;

            @Override
            public void sync() throws IOException {
                events.add("syncfs " + visibleNames());
                if (calls++ == failSyncfs.get()) {
                    throw new java.nio.file.FileSystemException(dir.toString(), null, "syncfs: Input/output error");
                }
            }

            @Override
            public void close() {
                events.add("close");
            }
        };
    };

    private long visibleNames() throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile)
                    .filter(p -> !p.getFileName().toString().contains(FileObjectTarget.TEMP_MARKER))
                    .count();
        }
    }

    private FileObjectTarget writer() {
        return new FileObjectTarget(root, fsyncs, syncfs, Durability.FILESYSTEM);
    }

    @Test
    void theBarrierCallsSyncfsBeforeAnyLinkAndAfterTheLastAndNoObjectIsFsynced() throws IOException {
        FileObjectTarget writer = writer();
        for (int i = 0; i < 40; i++) {
            assertThat(writer.putIfAbsentDeferred("chunks/" + (i % 4) + "/k" + i, bytes("v" + i)))
                    .isTrue();
        }
        assertThat(visibleNames()).isZero();
        writer.flush();

        assertThat(events.stream().filter(e -> e.startsWith("file ") || e.startsWith("dir ")))
                .as("no deferred object nor its new directory is fsynced on its own")
                .isEmpty();
        assertThat(events.stream().filter(e -> e.startsWith("syncfs")))
                .as("one syncfs before the links (no name visible), one after them (all 40)")
                .containsExactly("syncfs 0", "syncfs 40");
        assertThat(events.get(0)).as("opened before the first write").startsWith("open " + root);
        for (int i = 0; i < 40; i++) {
            assertThat(writer.get("chunks/" + (i % 4) + "/k" + i)).contains(bytes("v" + i));
        }
        // a durable put after the barrier (a manifest) comes after both syncfs calls
        writer.putIfAbsent("manifests/m", bytes("m"));
        assertThat(events.indexOf("syncfs 40")).isLessThan(events.indexOf("file manifests/" + tempOf("manifests")));
        writer.flush(); // nothing pending: no further syncfs
        assertThat(events.stream().filter(e -> e.startsWith("syncfs"))).hasSize(2);
    }

    /** The temporary name the manifest's fsync recorded, found in the events. */
    private String tempOf(String dir) {
        synchronized (events) {
            return events.stream()
                    .filter(e -> e.startsWith("file " + dir + "/"))
                    .map(e -> e.substring(("file " + dir + "/").length()))
                    .findFirst()
                    .orElseThrow();
        }
    }

    @Test
    void aFailedSyncfsBeforeTheLinksPublishesNothingAndRefusesLaterWritesUntilRestart() throws IOException {
        FileObjectTarget writer = writer();
        failSyncfs.set(0);
        for (int i = 0; i < 8; i++) {
            writer.putIfAbsentDeferred("chunks/a/k" + i, bytes("v" + i));
        }

        assertThatThrownBy(writer::flush)
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("syncfs")
                .hasMessageContaining("Check the kernel log")
                .hasMessageContaining("restart");
        assertThat(visibleNames()).isZero();
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(Files::isRegularFile))
                    .as("temporary files removed")
                    .isEmpty();
        }
        assertThat(writer.exists("chunks/a/k0")).isFalse();
        assertThatThrownBy(writer::flush).isInstanceOf(PermanentException.class);
        assertThatThrownBy(() -> writer.putIfAbsentDeferred("chunks/a/k9", bytes("v9")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("syncfs");

        FileObjectTarget restarted = writer();
        failSyncfs.set(-1);
        assertThat(restarted.putIfAbsentDeferred("chunks/a/k0", bytes("v0"))).isTrue();
        restarted.flush();
        assertThat(new FileObjectTarget(root).get("chunks/a/k0")).contains(bytes("v0"));
    }

    @Test
    void aFailedSyncfsAfterTheLinksRefusesLaterWritesUntilRestart() {
        FileObjectTarget writer = writer();
        failSyncfs.set(1);
        writer.putIfAbsentDeferred("chunks/a/k0", bytes("v0"));

        assertThatThrownBy(writer::flush).isInstanceOf(PermanentException.class).hasMessageContaining("after linking");
        assertThatThrownBy(() -> writer.putIfAbsentDeferred("chunks/a/k1", bytes("v1")))
                .isInstanceOf(PermanentException.class);
    }

    @Test
    void theDefaultModeNeverCallsSyncfs() {
        FileObjectTarget writer = new FileObjectTarget(root, fsyncs, syncfs, Durability.PER_FILE);
        writer.putIfAbsentDeferred("chunks/a/k0", bytes("v0"));
        writer.flush();
        assertThat(events).anyMatch(e -> e.startsWith("file chunks/a/")).noneMatch(e -> e.startsWith("syncfs"));
    }

    @Test
    void theRealSyncfsMakesABatchDurableAndVisibleOnThisFileSystem() {
        FileObjectTarget writer = new FileObjectTarget(root, Durability.FILESYSTEM);
        for (int i = 0; i < 300; i++) {
            writer.putIfAbsentDeferred("chunks/" + (i % 16) + "/k" + i, bytes("v" + i));
        }
        writer.flush();
        FileObjectTarget reader = new FileObjectTarget(root);
        for (int i = 0; i < 300; i++) {
            assertThat(reader.get("chunks/" + (i % 16) + "/k" + i)).contains(bytes("v" + i));
        }
        assertThat(reader.list("chunks/")).hasSize(300);
    }

    @Test
    void syncfsOfAMissingDirectorySaysWhichAndWhy() {
        assertThatThrownBy(() -> FileSystemSync.SYSTEM.open(root.resolve("missing")))
                .isInstanceOf(java.nio.file.FileSystemException.class)
                .hasMessageContaining("missing")
                .hasMessageContaining("No such file");
    }

    @Test
    void unknownDurabilityNamesTheKeyAndTheAllowedValues() {
        assertThat(Durability.parse(null)).isEqualTo(Durability.PER_FILE);
        assertThat(Durability.parse("filesystem")).isEqualTo(Durability.FILESYSTEM);
        assertThatThrownBy(() -> Durability.parse("syncfs"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("durability")
                .hasMessageContaining("'syncfs'")
                .hasMessageContaining("per-file, filesystem");
    }

    @Test
    void syncfsIsUsedOnlyWhereItReportsWritebackErrorsLinux58OrLater() {
        assertThat(Syncfs.reportsWritebackErrors("Linux", "6.1.0-28-amd64")).isTrue();
        assertThat(Syncfs.reportsWritebackErrors("Linux", "5.8.0")).isTrue();
        assertThat(Syncfs.reportsWritebackErrors("Linux", "5.10.0-33-amd64")).isTrue();
        assertThat(Syncfs.reportsWritebackErrors("Linux", "5.7.19")).isFalse();
        assertThat(Syncfs.reportsWritebackErrors("Linux", "4.19.0-27-amd64")).isFalse();
        assertThat(Syncfs.reportsWritebackErrors("Linux", "unknown")).isFalse();
        assertThat(Syncfs.reportsWritebackErrors("Mac OS X", "14.5")).isFalse();
    }
}
