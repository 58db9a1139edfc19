package io.tidemark.core.hypervisor;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostScratchTest {

    @Test
    void atStartUpEveryEmptyJobDirectoryGoesAndNonEmptyOnesStay(@TempDir Path work) throws IOException {
        Path empty = Files.createDirectories(work.resolve("28797d72")); // a job killed before its scratch
        Path busy = Files.createDirectories(work.resolve("4c5aec3f"));
        Files.writeString(busy.resolve("notes.txt"), "not scratch");

        assertThat(HostScratch.removeEmptyJobDirectories(work)).containsExactly(empty);
        assertThat(empty).doesNotExist();
        assertThat(busy.resolve("notes.txt")).exists();
    }

    @TempDir
    Path root;

    /** The tag a capture of a process that has exited carried. */
    static String deadTag() throws IOException, InterruptedException {
        Process p = new ProcessBuilder("sleep", "60").start();
        long start = p.info().startInstant().orElseThrow().getEpochSecond();
        p.destroyForcibly();
        p.waitFor();
        return Long.toString(p.pid(), 36) + "." + Long.toString(start, 36) + ".1";
    }

    @Test
    void aTagIsHeldUntilReleasedAndAnUntaggedOrDeadProcessesNameIsALeftover() throws Exception {
        String tag = HostScratch.newTag();
        assertThat(HostScratch.isLeftover("tmfl-" + tag + "-0")).isFalse();
        HostScratch.release(tag);
        assertThat(HostScratch.isLeftover("tmfl-" + tag + "-0")).isTrue();

        assertThat(HostScratch.isLeftover("tmfl-" + deadTag() + "-0")).isTrue();
        assertThat(HostScratch.isLeftover("tmfl-3-0"))
                .as("a name from before tags")
                .isTrue();
        // another live process (this JVM's parent, say) holds its tags
        ProcessHandle parent = ProcessHandle.current().parent().orElseThrow();
        String live = Long.toString(parent.pid(), 36) + "."
                + Long.toString(parent.info().startInstant().orElseThrow().getEpochSecond(), 36) + ".7";
        assertThat(HostScratch.isLeftover("tmfl-" + live + "-0")).isFalse();
        // the same pid started at another time is another process: its things are leftovers
        String reused = Long.toString(parent.pid(), 36) + ".1.7";
        assertThat(HostScratch.isLeftover("tmfl-" + reused + "-0")).isTrue();
    }

    @Test
    void startUpCleanupRemovesTheScratchOfDeadCapturesAndKeepsLiveOnesAndOtherFiles() throws Exception {
        Path work = Files.createDirectories(root.resolve("work"));
        String dead = deadTag();
        Path killed = Files.createDirectories(work.resolve("1a2b3c"));
        Path fleece = Files.writeString(killed.resolve("fleece-" + dead + "-0.qcow2"), "x");
        Path socket = Files.writeString(killed.resolve("nbd-" + dead + ".sock"), "");
        Path old = Files.createDirectories(work.resolve("old"));
        Path legacy = Files.writeString(old.resolve("fleece-5-0.qcow2"), "x");
        Path legacyScratch = Files.writeString(old.resolve("tm-scratch-vda.qcow2"), "x");
        Path notOurs = Files.writeString(old.resolve("notes.txt"), "keep");

        String liveTag = HostScratch.newTag();
        Path running = Files.createDirectories(work.resolve("running"));
        Path liveFleece = Files.writeString(running.resolve("fleece-" + liveTag + "-0.qcow2"), "x");
        Path freshEmpty = Files.createDirectories(work.resolve("fresh"));
        Path staleEmpty = Files.createDirectories(work.resolve("stale"));
        Instant now = Instant.now();
        Files.setLastModifiedTime(staleEmpty, FileTime.from(now.minus(Duration.ofHours(2))));
        Path tmpSockets = Files.createTempDirectory(HostScratch.SOCKET_DIR_PREFIX + dead + "-");
        Files.writeString(tmpSockets.resolve("nbd-" + dead + ".sock"), "");
        try {
            HostScratch.removeLeftovers(work, Clock.fixed(now, ZoneOffset.UTC));

            assertThat(fleece).doesNotExist();
            assertThat(socket).doesNotExist();
            assertThat(killed).doesNotExist();
            assertThat(legacy).doesNotExist();
            assertThat(legacyScratch).doesNotExist();
            assertThat(notOurs).exists();
            assertThat(liveFleece).exists();
            assertThat(freshEmpty)
                    .as("a work directory a job may have just made")
                    .exists();
            assertThat(staleEmpty).doesNotExist();
            assertThat(tmpSockets).doesNotExist();
        } finally {
            HostScratch.release(liveTag);
        }
    }

    @Test
    void checkpointNamesCarryTheOwnerAndNeverCollideWithNamesFromBeforeOwners() {
        String owner = CheckpointNames.ownerOf("s3://bucket/prefix");
        assertThat(owner).matches("r[0-9a-f]{10}").isEqualTo(CheckpointNames.ownerOf("s3://bucket/prefix"));
        assertThat(CheckpointNames.ownerOf("file:/other")).isNotEqualTo(owner);
        String name = CheckpointNames.name(owner, "20261206T230000.000Z-abc123");
        assertThat(name).startsWith("tm-" + owner + "-");
        // an old name tm-<point id> starts with a digit after tm-, an owner with a letter
        assertThat("tm-20261206T230000.000Z-abc123").doesNotStartWith(CheckpointNames.prefixOf(owner));
    }
}
