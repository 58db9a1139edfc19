package io.tidemark.core.hypervisor;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AcceleratorsTest {

    @TempDir
    Path dir;

    @Test
    void kvmNeedsTheDeviceAndAVirtualisationCapableCpu() throws Exception {
        Path kvm = Files.createFile(dir.resolve("kvm"));
        Path nested = Files.writeString(dir.resolve("nested"), "processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor\n");
        Path intel = Files.writeString(dir.resolve("intel"), "processor\t: 0\nflags\t\t: fpu vme vmx sse2\n");
        Path amd = Files.writeString(dir.resolve("amd"), "processor\t: 0\nflags\t\t: fpu svm sse2\n");

        assertThat(Accelerators.whyNoKvm(dir.resolve("none"), intel))
                .hasValueSatisfying(w -> assertThat(w).contains("does not exist"));
        assertThat(Accelerators.whyNoKvm(kvm, nested))
                .hasValueSatisfying(w -> assertThat(w).contains("no vmx/svm"));
        assertThat(Accelerators.whyNoKvm(kvm, intel)).isEmpty();
        assertThat(Accelerators.whyNoKvm(kvm, amd)).isEmpty();
    }

    @Test
    void aPlansOwnAcceleratorIsRecognisedAndForcedChoicesAreKept() {
        assertThat(Accelerators.chooses(List.of("-device", "virtio-rng-pci"))).isFalse();
        assertThat(Accelerators.chooses(List.of("-accel", "kvm"))).isTrue();
        assertThat(Accelerators.chooses(List.of("-machine", "q35,accel=kvm"))).isTrue();
        assertThat(Accelerators.chooses(List.of("-enable-kvm"))).isTrue();
        assertThat(Accelerators.qemuArgs("tcg")).containsExactly("-accel", "tcg");
        assertThat(Accelerators.qemuArgs("kvm")).containsExactly("-accel", "kvm");
        assertThat(Accelerators.qemuArgs("auto"))
                .isEqualTo(
                        Accelerators.whyNoKvm().isEmpty()
                                ? List.of("-accel", "kvm", "-accel", "tcg")
                                : List.of("-accel", "tcg"));
    }
}
