package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.DiskSwitch;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Which hypervisors offer a rollback: only those that can switch a running VM's disks. */
class RollbackTest {

    private final Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());

    @Test
    void aHypervisorThatCannotSwitchDisksOffersNoRollback() {
        assertThat(Rollback.on(repo, new ListingOnly(Optional.empty()), null, Clock.systemUTC()))
                .isEmpty();
    }

    @Test
    void aHypervisorThatOffersADiskSwitchOffersARollback() {
        DiskSwitch switcher = new DiskSwitch() {
            @Override
            public Map<String, Path> imageFiles(String vm) {
                return Map.of();
            }

            @Override
            public void switchDisks(String vm, Map<String, Path> images) {}
        };
        assertThat(Rollback.on(repo, new ListingOnly(Optional.of(switcher)), null, Clock.systemUTC()))
                .isPresent();
    }

    /** A host with no VMs that can (or cannot) switch disks; it captures nothing. */
    private record ListingOnly(Optional<DiskSwitch> disks) implements Hypervisor {
        @Override
        public List<VmInfo> list() {
            return List.of();
        }

        @Override
        public Capture capture(CaptureRequest request) {
            throw new AssertionError("a rollback's construction captures nothing");
        }

        @Override
        public Optional<DiskSwitch> diskSwitch() {
            return disks;
        }

        @Override
        public void close() {}
    }
}
