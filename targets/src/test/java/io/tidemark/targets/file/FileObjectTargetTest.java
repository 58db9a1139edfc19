package io.tidemark.targets.file;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.contract.ObjectTargetContract;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileObjectTargetTest extends ObjectTargetContract {

    @TempDir
    Path tempDir;

    private Path root;

    @Override
    protected ObjectTarget newTarget() {
        root = tempDir.resolve("repo");
        try {
            Files.createDirectories(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return new FileObjectTarget(root);
    }

    @Test
    void aRepositoryDirectoryReachedThroughASymbolicLinkStoresTopLevelAndNestedObjects() throws IOException {
        // e.g. /var/lib/tidemark/repo -> /srv/shared-primary, or several hosts' repo links to one mount
        Path real = Files.createDirectories(tempDir.resolve("shared"));
        Path link = Files.createSymbolicLink(tempDir.resolve("linked-repo"), real);
        try (FileObjectTarget linked = new FileObjectTarget(link)) {
            linked.putIfAbsent("config", "v1".getBytes(UTF_8));
            linked.putIfAbsent("chunks/ab/abcd", "payload".getBytes(UTF_8));

            assertThat(linked.get("config"))
                    .hasValueSatisfying(b -> assertThat(b).isEqualTo("v1".getBytes(UTF_8)));
            assertThat(linked.list("chunks/")).containsExactly("chunks/ab/abcd");
            assertThat(linked.list("")).containsExactly("chunks/ab/abcd", "config");
            Files.writeString(real.resolve("chunks/ab/abce" + FileObjectTarget.TEMP_MARKER + "zik0zi.0-1f"), "half");
            assertThat(linked.removeLeftoverTemporaries()).isEqualTo(1);
        }
        assertThat(real.resolve("config")).hasContent("v1");
        assertThat(real.resolve("chunks/ab/abcd")).hasContent("payload");
    }

    @Test
    void startUpRemovesTheTemporaryFilesOfDeadWritersAndKeepsThoseOfLiveOnes() throws IOException {
        target.putIfAbsent("chunks/ab/abcd", "payload".getBytes(UTF_8));
        Path dir = root.resolve("chunks/ab");
        // a writer killed mid-write: a process (pid 2^31-2 in base 36) that does not run
        Path dead = Files.writeString(dir.resolve("abce" + FileObjectTarget.TEMP_MARKER + "zik0zi.0-1f"), "half");
        Path live = Files.writeString(
                dir.resolve("abcf" + FileObjectTarget.TEMP_MARKER + HostScratch.processPart() + "-2e"), "writing");
        Path oldUntagged = Files.writeString(dir.resolve("abd0" + FileObjectTarget.TEMP_MARKER + "3a"), "old");
        Files.setLastModifiedTime(
                oldUntagged, FileTime.from(Instant.now().minus(FileObjectTarget.UNTAGGED_TEMP_AGE.plusMinutes(1))));
        Path newUntagged = Files.writeString(dir.resolve("abd1" + FileObjectTarget.TEMP_MARKER + "3b"), "new");

        int removed = ((FileObjectTarget) target).removeLeftoverTemporaries();

        assertThat(removed).isEqualTo(2);
        assertThat(dead).doesNotExist();
        assertThat(oldUntagged).doesNotExist();
        assertThat(live).exists();
        assertThat(newUntagged).exists();
        assertThat(root.resolve("chunks/ab/abcd")).hasContent("payload");
    }

    @Test
    void aTemporaryFileNamesTheProcessThatWritesIt() throws IOException {
        FileObjectTarget deferred = (FileObjectTarget) target;
        deferred.putIfAbsentDeferred("chunks/aa/aaaa", "x".getBytes(UTF_8));
        try (Stream<Path> files = Files.list(root.resolve("chunks/aa"))) {
            assertThat(files.map(p -> p.getFileName().toString()))
                    .singleElement()
                    .asString()
                    .contains(FileObjectTarget.TEMP_MARKER + HostScratch.processPart() + "@" + FileObjectTarget.MACHINE
                            + "-");
        }
        deferred.flush();
    }

    @Test
    void onADirectorySharedByHostsStartUpKeepsAnotherMachinesFreshTemporariesWhateverItsPid() throws IOException {
        target.putIfAbsent("chunks/ab/abcd", "payload".getBytes(UTF_8));
        Path dir = root.resolve("chunks/ab");
        // pid zik0zi does not run here; on the other host it may be writing right now
        Path otherHostWriting = Files.writeString(
                dir.resolve("abce" + FileObjectTarget.TEMP_MARKER + "zik0zi.0@hv2_0badf00d-1f"), "in flight");
        Path otherHostLongDead = Files.writeString(
                dir.resolve("abcf" + FileObjectTarget.TEMP_MARKER + "zik0zi.0@hv2_0badf00d-2f"), "abandoned");
        Files.setLastModifiedTime(
                otherHostLongDead,
                FileTime.from(Instant.now().minus(FileObjectTarget.FOREIGN_TEMP_AGE.plusMinutes(1))));
        Path thisHostDead = Files.writeString(
                dir.resolve("abd0" + FileObjectTarget.TEMP_MARKER + "zik0zi.0@" + FileObjectTarget.MACHINE + "-3f"),
                "half");
        Path thisHostLive = Files.writeString(
                dir.resolve("abd1" + FileObjectTarget.TEMP_MARKER + HostScratch.processPart() + "@"
                        + FileObjectTarget.MACHINE + "-4f"),
                "writing");

        int removed = ((FileObjectTarget) target).removeLeftoverTemporaries();

        assertThat(otherHostWriting).as("another host's write in flight").exists();
        assertThat(thisHostLive).exists();
        assertThat(otherHostLongDead).doesNotExist();
        assertThat(thisHostDead).doesNotExist();
        assertThat(removed).isEqualTo(2);
    }

    @Test
    void objectsAreFilesUnderTheRootNamedByTheirKey() throws IOException {
        target.putIfAbsent("chunks/ab/abcd", "payload".getBytes(UTF_8));

        assertThat(root.resolve("chunks/ab/abcd")).hasContent("payload");
        assertThat(target.describe()).isEqualTo("file://" + root.toAbsolutePath());
        assertThat(allFiles()).containsExactly(root.resolve("chunks/ab/abcd"));
    }

    @Test
    void aCrashBetweenTempWriteAndLinkLeavesNoVisibleObject() throws IOException {
        Path dir = Files.createDirectories(root.resolve("chunks/ab"));
        Path orphan = dir.resolve("abcd" + FileObjectTarget.TEMP_MARKER + "0123456789abcdef");
        Files.write(orphan, "half-writ".getBytes(UTF_8));

        assertThat(target.list("")).isEmpty();
        assertThat(target.list("chunks/ab/")).isEmpty();
        assertThat(target.get("chunks/ab/abcd")).isEmpty();
        assertThat(target.exists("chunks/ab/abcd")).isFalse();

        assertThat(target.putIfAbsent("chunks/ab/abcd", "whole".getBytes(UTF_8)))
                .isTrue();
        assertThat(target.list("")).containsExactly("chunks/ab/abcd");
        assertThat(target.get("chunks/ab/abcd"))
                .hasValueSatisfying(read -> assertThat(read).isEqualTo("whole".getBytes(UTF_8)));
    }

    @Test
    void writesLeaveNoTemporaryFilesBehind() throws IOException {
        target.putIfAbsent("a/b", new byte[] {1});
        target.putIfAbsent("a/b", new byte[] {2});
        target.putIfAbsent("a/c", new byte[0]);

        assertThat(allFiles()).containsExactly(root.resolve("a/b"), root.resolve("a/c"));
    }

    @Test
    void traversalKeysAreRejectedWithAClearMessage() {
        assertThatThrownBy(() -> target.putIfAbsent("../outside", new byte[1]))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("invalid object key '../outside'")
                .hasMessageContaining("'..' segment")
                .hasMessageContaining("escape");
        assertThatThrownBy(() -> target.get("chunks/../../etc/passwd"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("chunks/../../etc/passwd");
        assertThatThrownBy(() -> target.delete("/etc/passwd"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("absolute");
        assertThatThrownBy(() -> target.list("../"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("'..' segment");

        assertThat(tempDir.resolve("outside")).doesNotExist();
    }

    @Test
    void keysThatLookLikeTemporaryFilesAreRejected() {
        assertThatThrownBy(() -> target.putIfAbsent("a" + FileObjectTarget.TEMP_MARKER + "1", new byte[1]))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("temporary");
    }

    @Test
    void aMissingRootIsReportedNotCreated() {
        Path missing = tempDir.resolve("not-mounted");
        FileObjectTarget unmounted = new FileObjectTarget(missing);

        assertThatThrownBy(() -> unmounted.putIfAbsent("chunks/x", new byte[1]))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(missing.toString())
                .hasMessageContaining("does not exist");
        assertThatThrownBy(() -> unmounted.list("")).isInstanceOf(PermanentException.class);
        assertThatThrownBy(() -> unmounted.get("chunks/x")).isInstanceOf(PermanentException.class);
        assertThat(missing).doesNotExist();
    }

    @Test
    void anObjectCannotAlsoBeADirectoryOfOtherKeys() {
        target.putIfAbsent("a", new byte[1]);

        assertThatThrownBy(() -> target.putIfAbsent("a/b", new byte[1]))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("a/b")
                .hasMessageContaining("not a directory");
    }

    private List<Path> allFiles() throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile).sorted().toList();
        }
    }
}
