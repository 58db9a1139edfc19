package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FailbackTest {

    @TempDir
    Path dir;

    @Test
    void theHomeDirectoryIsTheOneGivenElseThePlansElseAnErrorThatSaysHowToGiveIt() {
        RecoveryPlan withHome = plan("home-dir: " + dir.resolve("home") + "\n");
        RecoveryPlan without = plan("");
        assertThat(Failback.homeDir(withHome, Optional.of(dir.resolve("to")))).isEqualTo(dir.resolve("to"));
        assertThat(Failback.homeDir(withHome, Optional.empty())).isEqualTo(dir.resolve("home"));
        assertThatThrownBy(() -> Failback.homeDir(without, Optional.empty()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("has no home-dir; say where the disks go at home with --to DIR");
    }

    @Test
    void withNoVmRunningAtTheDrSiteThereIsNothingToBringHome() {
        RecoveryPlan plan = plan("");
        DrSite site = new DrSite(dir.resolve("dr"));
        assertThatThrownBy(() -> Failback.running(plan, site, Optional.empty()))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("runs at the DR site (" + site.runDir() + "); nothing to bring home");
        assertThatThrownBy(() -> Failback.running(plan, site, Optional.of(List.of("db-1"))))
                .isInstanceOf(PermanentException.class);
    }

    private RecoveryPlan plan(String extra) {
        String yaml = "site: dr-test\nsource: offsite\nwork-dir: " + dir.resolve("dr") + "\n" + extra
                + "groups: [{name: g, vms: [{name: db-1}, {name: web-1}]}]\n";
        return new RecoveryPlanParser().parse(dir.resolve("plan.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
    }
}
