package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.hypervisor.Accelerators;
import io.tidemark.policies.RecoveryPlan;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

class DrSiteTest {

    private static RecoveryPlan.Vm vm(List<String> args) {
        return new RecoveryPlan.Vm("db-1", 64, 1, args, List.of());
    }

    private static int count(List<String> cmd, String arg) {
        return Collections.frequency(cmd, arg);
    }

    @Test
    void theAcceleratorIsChosenNotHardCodedAndThePlansOwnWins() {
        List<String> auto = new DrSite(Path.of("/srv/dr")).command(vm(List.of()), List.of("sd0"));
        List<String> tcg = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.TCG).command(vm(List.of()), List.of());
        List<String> kvm = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.KVM).command(vm(List.of()), List.of());
        List<String> own = new DrSite(Path.of("/srv/dr")).command(vm(List.of("-accel", "hvf")), List.of());

        // auto: KVM first (QEMU falls back to the next -accel) only where this host can run KVM guests
        assertThat(auto.subList(3, auto.indexOf("-display")))
                .isEqualTo(
                        Accelerators.whyNoKvm().isEmpty()
                                ? List.of("-accel", "kvm", "-accel", "tcg")
                                : List.of("-accel", "tcg"));
        assertThat(tcg).containsSubsequence("-accel", "tcg").doesNotContain("kvm");
        assertThat(kvm).containsSubsequence("-accel", "kvm").doesNotContain("tcg");
        // the plan's -accel is the only one: ours would come first and win
        assertThat(count(own, "-accel")).isEqualTo(1);
        assertThat(own.get(own.indexOf("-accel") + 1)).isEqualTo("hvf");
    }
}
