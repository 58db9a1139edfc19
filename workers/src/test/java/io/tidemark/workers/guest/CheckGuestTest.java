package io.tidemark.workers.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckGuestTest {

    @TempDir
    Path dir;

    @Test
    void aKernelDirectoryWithoutInitrdIsPermanentAndSaysHowToBuildOne() throws Exception {
        Files.writeString(dir.resolve("vmlinuz"), "k");
        assertThatThrownBy(() -> CheckGuest.Kernel.in(dir))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no initrd.gz in the guest kernel directory " + dir)
                .hasMessageContaining("deploy/guest/build-tiny-guest.sh");
        Files.writeString(dir.resolve("initrd.gz"), "i");
        assertThat(CheckGuest.Kernel.in(dir).initrd()).isEqualTo(dir.resolve("initrd.gz"));
    }

    @Test
    void theGuestIsIsolatedAndGetsItsDisksInOrder() {
        CheckGuest.Kernel k = new CheckGuest.Kernel(dir.resolve("vmlinuz"), dir.resolve("initrd.gz"));
        List<String> cmd = CheckGuest.commandLine(
                k,
                "drill",
                dir,
                List.of(
                        new CheckGuest.Disk("d0", dir.resolve("a,b.qcow2"), "qcow2"),
                        new CheckGuest.Disk("d1", dir.resolve("c.raw"), "raw")));
        String line = String.join(" ", cmd);
        assertThat(cmd).contains("-nodefaults", "tcg").doesNotContain("-netdev", "-nic", "-net");
        assertThat(line)
                .contains("filename=" + dir.resolve("a,,b.qcow2") + ",node-name=d0-file")
                .contains("driver=raw,file=d1-file")
                .contains("socket,path=" + dir.resolve("drill.qga"))
                .contains("name=org.qemu.guest_agent.0");
        assertThat(line.indexOf("drive=d0-fmt")).isLessThan(line.indexOf("drive=d1-fmt")); // vda, then vdb
    }
}
