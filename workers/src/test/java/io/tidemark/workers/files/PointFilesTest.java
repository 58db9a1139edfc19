package io.tidemark.workers.files;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** guestfish's output mapped to structured entries, paths, and where the appliance's kernel comes from. */
class PointFilesTest {

    @TempDir
    Path dir;

    @Test
    void parsesGuestfishStructListsIntoEntries() {
        String out = "[0] = {\n  st_dev: 2065\n  st_ino: 12\n  st_mode: 33184\n  st_uid: 1001\n  st_gid: 1002\n"
                + "  st_size: 21\n  st_mtime_sec: 1700000000\n  st_mtime_nsec: 123456789\n}\n"
                + "[1] = {\n  st_ino: 13\n  st_mode: 41471\n  st_uid: 7\n  st_size: 9\n}\n";
        List<Map<String, Long>> st = PointFiles.parseStats(out);
        assertThat(st).hasSize(2);
        FileEntry f = FileEntry.of("/data/hello.txt", st.get(0), Optional.empty());
        assertThat(f.name()).isEqualTo("hello.txt");
        assertThat(f.type()).isEqualTo("file");
        assertThat(f.mode()).isEqualTo(0640);
        assertThat(f.modeString()).isEqualTo("-rw-r-----");
        assertThat(f.uid()).isEqualTo(1001);
        assertThat(f.mtime()).isEqualTo(Instant.ofEpochSecond(1_700_000_000L, 123_456_789L));
        FileEntry l = FileEntry.of("/data/link", st.get(1), Optional.of("hello.txt"));
        assertThat(l.type()).isEqualTo("symlink");
        assertThat(l.modeString()).isEqualTo("lrwxrwxrwx");
        assertThat(FileEntry.of("/", PointFiles.parseStat("st_mode: 17407\n"), Optional.empty())
                        .modeString())
                .isEqualTo("drwxrwxrwt");
        assertThat(FileEntry.type(0104755)).isEqualTo("file");
        assertThat(FileEntry.of("/x", Map.of("st_mode", 0104755L), Optional.empty())
                        .modeString())
                .isEqualTo("-rwsr-xr-x");
    }

    @Test
    void normalisesPathsWithoutLeavingTheRoot() {
        assertThat(PointFiles.normalise("/a//b/./c/../d/")).isEqualTo("/a/b/d");
        assertThat(PointFiles.normalise("/../../etc")).isEqualTo("/etc");
        assertThat(PointFiles.normalise("/")).isEqualTo("/");
    }

    @Test
    void findsTheApplianceKernelOrSaysWhatToRun() throws Exception {
        Path boot = Files.createDirectories(dir.resolve("boot"));
        Path cache = dir.resolve("guestfs-kernel");
        // nothing anywhere: name the script and the package
        assertThatThrownBy(() -> GuestFsKernel.environment(Map.of(), boot, cache))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("deploy/guest/guestfs-kernel.sh")
                .hasMessageContaining("linux-image-amd64");
        // the script's directory
        Files.createDirectories(cache);
        Files.writeString(cache.resolve("ready"), "6.1.0-57-amd64\n");
        Map<String, String> env = GuestFsKernel.environment(Map.of(), boot, cache);
        assertThat(env)
                .containsEntry("LIBGUESTFS_BACKEND", "direct")
                .containsEntry(
                        "SUPERMIN_KERNEL",
                        cache.resolve("boot/vmlinuz-6.1.0-57-amd64").toString())
                .containsEntry(
                        "SUPERMIN_MODULES",
                        cache.resolve("lib/modules/6.1.0-57-amd64").toString())
                .containsEntry("SUPERMIN_KERNEL_VERSION", "6.1.0-57-amd64");
        // a kernel in /boot: supermin finds it itself; the operator's own settings win
        Files.createFile(boot.resolve("vmlinuz-6.1.0-1-amd64"));
        assertThat(GuestFsKernel.environment(Map.of(), boot, cache)).doesNotContainKey("SUPERMIN_KERNEL");
        assertThat(GuestFsKernel.environment(
                        Map.of("SUPERMIN_KERNEL", "/k", "LIBGUESTFS_BACKEND", "libvirt"), boot, cache))
                .isEmpty();
        assertThatThrownBy(() -> GuestFsKernel.environment(Map.of(GuestFsKernel.ENV, dir.toString()), boot, cache))
                .hasMessageContaining("not a kernel directory made by deploy/guest/guestfs-kernel.sh");
    }
}
