package io.tidemark.workers.mirror;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.tidemark.core.PermanentException;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.qemu.DrNbdSite;
import io.tidemark.testkit.qemu.QemuVm;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link ContinuousProtection} protecting a whole two-disk VM on real QEMU, one DR export per disk. */
class ContinuousProtectionIT {

    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private QemuVm vm;
    private DrNbdSite dr0;
    private DrNbdSite dr1;
    private final ContinuousProtection protection = new ContinuousProtection(
            new RecordingEventBus(), Clock.systemUTC(), Duration.ofMillis(100), Duration.ofSeconds(1));

    @AfterEach
    void stopAll() {
        protection.close();
        for (AutoCloseable c : new AutoCloseable[] {vm, dr0, dr1}) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }

    @Test
    void everyDiskOfAVmIsMirroredToItsOwnExportFromATemplate() {
        vm = QemuVm.start(dir, "vm1", 16L * MIB, 24L * MIB);
        dr0 = DrNbdSite.start(dir, "vm1-sd0", 16L * MIB);
        dr1 = DrNbdSite.start(dir, "vm1-sd1", 24L * MIB);
        protection.protect(new ContinuousProtection.Protected(
                "vm1",
                vm.qmpSocket(),
                "cdp",
                Duration.ofSeconds(1),
                "nbd+unix:///{vm}-{disk}?socket=" + dir + "/{vm}-{disk}.nbd"));

        await().atMost(Duration.ofSeconds(60))
                .until(() -> protection.status().size() == 2
                        && protection.status().stream().allMatch(MirrorState::inSync));
        vm.write("sd0", MIB, 64 * 1024, 0x0a);
        vm.write("sd1", 20L * MIB, 64 * 1024, 0x1b);
        assertThat(dr0.sha256()).isEqualTo(vm.model("sd0").sha256());
        assertThat(dr1.sha256()).isEqualTo(vm.model("sd1").sha256());
        assertThat(protection.metrics())
                .contains("tidemark_mirror_in_sync{vm=\"vm1\",disk=\"sd0\"} 1")
                .contains("tidemark_mirror_in_sync{vm=\"vm1\",disk=\"sd1\"} 1");

        protection.unprotect("vm1");
        vm.write("sd0", 2L * MIB, 4096, 0x0c); // no longer mirrored: the VM runs on, the replica keeps the past
        assertThat(dr0.sha256()).isNotEqualTo(vm.model("sd0").sha256());
    }

    @Test
    void aVmWithOneUnreachableExportIsRefusedAndLeftUnmirrored() {
        vm = QemuVm.start(dir, "vm1", 16L * MIB, 24L * MIB);
        dr0 = DrNbdSite.start(dir, "vm1-sd0", 16L * MIB); // none for sd1

        assertThatThrownBy(() -> protection.protect(new ContinuousProtection.Protected(
                        "vm1",
                        vm.qmpSocket(),
                        "cdp",
                        Duration.ofSeconds(1),
                        "nbd+unix:///{vm}-{disk}?socket=" + dir + "/{vm}-{disk}.nbd")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("vm1-sd1")
                .hasMessageContaining("cannot be reached");
        assertThat(vm.qmp("query-block-jobs", null)).isEmpty();
    }
}
