package io.tidemark.testkit.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.CheckpointNames;
import io.tidemark.core.hypervisor.DiskExport;
import io.tidemark.core.hypervisor.DiskInfo;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.testkit.qemu.DiskModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The behaviour every {@link Hypervisor} adapter must show, against real VMs. A subclass supplies the
 * adapter ({@link #newHypervisor()}), a way to start a VM and write to its disks like a guest
 * ({@link #startVm}), a reader for the NBD exports ({@link #read}, {@link #dirtyExtents}) and a
 * host that does not answer ({@link #unreachable()}).
 *
 * <p>What is asserted: listing shows running VMs with their disks; a full capture exports every
 * disk as it was at the capture moment (later guest writes do not show); an incremental's dirty
 * extents cover every write since the committed checkpoint and nothing beyond the bitmap
 * granularity; a capture closed without {@link Capture#commit()} loses no change; all disks are
 * captured at one moment; a missing checkpoint gives a full capture that names it; an unknown VM
 * is a {@link PermanentException} naming it; an unreachable host is a {@link RetriableException}
 * naming where it was looked for; two owners (repositories) capturing one VM keep their own
 * checkpoints, and a checkpoint without owner from an earlier version still serves as parent.
 * Checkpoint names start with {@code tm-}.
 */
public abstract class HypervisorContract {

    protected static final long MIB = 1 << 20;

    /** A running VM whose disks the suite writes to through the guest's own block devices. */
    public interface GuestVm extends AutoCloseable {
        /** The VM's name as the hypervisor lists it. */
        String name();

        /** Disk names as the hypervisor reports them, in the VM's disk order. */
        List<String> disks();

        /** Writes {@code patternByte} like a guest (dirty bitmaps see it) and updates the model. */
        void write(String disk, long offset, int length, int patternByte);

        /** The expected content of a disk. */
        DiskModel model(String disk);

        /** Stops the VM and forgets it. */
        @Override
        void close();
    }

    /**
     * A host the adapter cannot reach.
     *
     * @param hypervisor an adapter pointed at it (closed by the suite)
     * @param vm a VM name to capture there
     * @param location what the error message must name (a socket path, a URI)
     */
    public record Unreachable(Hypervisor hypervisor, String vm, String location) {}

    /** A private directory for each test (VM files, work directories). */
    @TempDir
    protected Path dir;

    /** The adapter under test; opened before and closed after each test. */
    protected Hypervisor hypervisor;

    private int jobs;

    /** A fresh adapter on the host where {@link #startVm} starts VMs. */
    protected abstract Hypervisor newHypervisor();

    /** Starts a VM with one fresh, zeroed disk per size (16–64 MiB). */
    protected abstract GuestVm startVm(String name, long... diskSizes);

    /** The whole export, as read over NBD. */
    protected abstract byte[] read(DiskExport export);

    /** The dirty extents of an incremental export as {offset, length} pairs. */
    protected abstract List<long[]> dirtyExtents(DiskExport export);

    /** An adapter pointed at a host (socket, daemon) that does not answer. */
    protected abstract Unreachable unreachable() throws IOException;

    /** The dirty-bitmap granularity of the adapter: dirty extents are whole grains of this size. */
    protected long granularity() {
        return 65536;
    }

    @BeforeEach
    void openHypervisor() {
        hypervisor = newHypervisor();
    }

    @AfterEach
    void closeHypervisor() {
        if (hypervisor != null) {
            hypervisor.close();
        }
    }

    /** A request with a fresh work directory. */
    protected CaptureRequest request(String vm, String since, String next) throws IOException {
        Path work = Files.createDirectories(dir.resolve("w" + ++jobs));
        return new CaptureRequest(vm, Optional.ofNullable(since), next, work);
    }

    /** A request of {@code owner} (a repository) with a fresh work directory. */
    protected CaptureRequest owned(String owner, String vm, String since, String next) throws IOException {
        Path work = Files.createDirectories(dir.resolve("w" + ++jobs));
        return new CaptureRequest(
                vm, Optional.ofNullable(since), next, work, ConsistencyPolicy.CRASH, Optional.of(owner));
    }

    /** A committed full capture that starts checkpoint {@code tm-1}. */
    protected void baseline(String vm) throws IOException {
        try (Capture c = hypervisor.capture(request(vm, null, "tm-1"))) {
            c.commit();
        }
    }

    @Test
    void listShowsARunningVmWithItsDisksInOrder() {
        try (GuestVm vm = startVm("ct-list", 32 * MIB, 16 * MIB)) {
            List<VmInfo> vms = hypervisor.list();

            assertThat(vms).extracting(VmInfo::name).contains(vm.name());
            VmInfo info = vms.stream()
                    .filter(v -> v.name().equals(vm.name()))
                    .findFirst()
                    .orElseThrow();
            assertThat(info.disks()).extracting(DiskInfo::name).containsExactlyElementsOf(vm.disks());
            assertThat(info.disks()).extracting(DiskInfo::sizeBytes).containsExactly(32 * MIB, 16 * MIB);
            assertThat(info.disks()).allSatisfy(d -> assertThat(d.node()).isNotBlank());
        }
    }

    @Test
    void aFullCaptureExportsEveryDiskAsItWasAtTheCaptureMoment() throws IOException {
        try (GuestVm vm = startVm("ct-full", 32 * MIB, 16 * MIB)) {
            String d0 = vm.disks().get(0);
            String d1 = vm.disks().get(1);
            vm.write(d0, 0, 65536, 0x11);
            vm.write(d0, 5 * MIB + 4096, 100_000, 0x22);
            vm.write(d1, 15 * MIB, (int) MIB, 0x33);

            Instant before = Instant.now();
            try (Capture c = hypervisor.capture(request(vm.name(), null, "tm-1"))) {
                assertThat(c.capturedAt()).isBetween(before.minusMillis(1), Instant.now());
                DiskModel m0 = vm.model(d0).copy();
                DiskModel m1 = vm.model(d1).copy();
                // the guest goes on writing after the capture: the exports must not show it
                vm.write(d0, 0, 2 * (int) MIB, 0x44);
                vm.write(d1, 15 * MIB, 4096, 0x55);

                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly(d0, d1);
                assertThat(c.disks()).extracting(DiskExport::sizeBytes).containsExactly(32 * MIB, 16 * MIB);
                assertThat(c.disks()).allSatisfy(e -> {
                    assertThat(e.incremental()).isFalse();
                    assertThat(e.fullReason())
                            .hasValueSatisfying(r -> assertThat(r.detail()).isNotBlank());
                });
                assertThat(DiskModel.sha256(read(c.disks().get(0)))).isEqualTo(m0.sha256());
                assertThat(DiskModel.sha256(read(c.disks().get(1)))).isEqualTo(m1.sha256());
                c.commit();
            }
        }
    }

    @Test
    void anIncrementalCoversEveryWriteSinceTheCommittedCheckpointAndLittleElse() throws IOException {
        try (GuestVm vm = startVm("ct-inc", 32 * MIB)) {
            String d = vm.disks().get(0);
            vm.write(d, 0, 4 * (int) MIB, 0x01);
            baseline(vm.name());
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, d, MIB + 100, 10, 0x41));
            writes.add(write(vm, d, 3 * MIB - 10, 20, 0x42));
            writes.add(write(vm, d, 10 * MIB, 200 * 1024, 0x43));
            List<long[]> after = new ArrayList<>();
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-1", "tm-2"))) {
                DiskModel atCapture = vm.model(d).copy();
                after.add(write(vm, d, MIB, 65536, 0x99));
                after.add(write(vm, d, 20 * MIB, (int) MIB, 0x98));
                DiskExport e = c.disks().get(0);

                assertThat(e.incremental()).as("incremental since tm-1").isTrue();
                assertCovers(dirtyExtents(e), writes);
                assertThat(DiskModel.sha256(read(e))).isEqualTo(atCapture.sha256());
                c.commit();
            }
            // the new checkpoint started at the capture moment: it holds the later writes only
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-2", "tm-3"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isTrue();
                assertCovers(dirtyExtents(e), after);
                assertThat(DiskModel.sha256(read(e))).isEqualTo(vm.model(d).sha256());
                c.commit();
            }
        }
    }

    @Test
    void aCaptureClosedWithoutCommitLosesNoChange() throws IOException {
        try (GuestVm vm = startVm("ct-nocommit", 32 * MIB)) {
            String d = vm.disks().get(0);
            baseline(vm.name());
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, d, 2 * MIB, 4096, 0x71));
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-1", "tm-2"))) {
                writes.add(write(vm, d, 9 * MIB, 65536, 0x72)); // during the job that fails
                assertThat(c.disks().get(0).incremental()).isTrue();
                // no commit(): the restore point was never written
            }
            writes.add(write(vm, d, 30 * MIB, 3 * 65536, 0x73));
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-1", "tm-3"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).as("tm-1 must still be usable").isTrue();
                assertCovers(dirtyExtents(e), writes);
                assertThat(DiskModel.sha256(read(e))).isEqualTo(vm.model(d).sha256());
                c.commit();
            }
        }
    }

    @Test
    void twoDisksAreCapturedAtOneMoment() throws IOException {
        try (GuestVm vm = startVm("ct-two", 32 * MIB, 16 * MIB)) {
            String d0 = vm.disks().get(0);
            String d1 = vm.disks().get(1);
            vm.write(d0, 0, (int) MIB, 0x01);
            vm.write(d1, 0, (int) MIB, 0x02);
            baseline(vm.name());
            List<long[]> w0 = List.of(write(vm, d0, 7 * MIB, 70_000, 0x51));
            List<long[]> w1 = List.of(write(vm, d1, 12_345, 1000, 0x52), write(vm, d1, 15 * MIB, (int) MIB, 0x53));
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-1", "tm-2"))) {
                DiskModel m0 = vm.model(d0).copy();
                DiskModel m1 = vm.model(d1).copy();
                // writes in lockstep after the moment: neither export may show either
                vm.write(d0, 7 * MIB, (int) MIB, 0x61);
                vm.write(d1, 0, 2 * (int) MIB, 0x62);

                assertThat(c.disks()).extracting(DiskExport::disk).containsExactly(d0, d1);
                assertThat(c.disks()).allMatch(DiskExport::incremental);
                assertCovers(dirtyExtents(c.disks().get(0)), w0);
                assertCovers(dirtyExtents(c.disks().get(1)), w1);
                assertThat(DiskModel.sha256(read(c.disks().get(0)))).isEqualTo(m0.sha256());
                assertThat(DiskModel.sha256(read(c.disks().get(1)))).isEqualTo(m1.sha256());
                c.commit();
            }
        }
    }

    @Test
    void aMissingCheckpointGivesAFullCaptureThatNamesIt() throws IOException {
        try (GuestVm vm = startVm("ct-missing", 16 * MIB)) {
            String d = vm.disks().get(0);
            baseline(vm.name());
            vm.write(d, MIB, 4096, 0x21);
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-gone", "tm-2"))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental()).isFalse();
                assertThat(e.fullReason())
                        .hasValueSatisfying(r -> assertThat(r.detail()).contains("tm-gone"));
                assertThat(DiskModel.sha256(read(e))).isEqualTo(vm.model(d).sha256());
                c.commit();
            }
            // the committed full capture's checkpoint works as the next parent
            List<long[]> w = List.of(write(vm, d, 3 * MIB, 4096, 0x22));
            try (Capture c = hypervisor.capture(request(vm.name(), "tm-2", "tm-3"))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertCovers(dirtyExtents(c.disks().get(0)), w);
            }
        }
    }

    /**
     * Two repositories protect one VM: each capture treats only its own owner's checkpoints as
     * leftovers, so neither drops the other's chain.
     */
    @Test
    void twoOwnersCapturingTheSameVmKeepTheirOwnCheckpoints() throws IOException {
        try (GuestVm vm = startVm("ct-owners", 16 * MIB)) {
            String d = vm.disks().get(0);
            String a = CheckpointNames.ownerOf("repository A");
            String b = CheckpointNames.ownerOf("repository B");
            for (String owner : List.of(a, b)) {
                try (Capture c = hypervisor.capture(owned(owner, vm.name(), null, CheckpointNames.name(owner, "1")))) {
                    c.commit();
                }
            }
            List<long[]> writes = new ArrayList<>();
            writes.add(write(vm, d, MIB, 4096, 0x31));
            try (Capture c = hypervisor.capture(
                    owned(a, vm.name(), CheckpointNames.name(a, "1"), CheckpointNames.name(a, "2")))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertCovers(dirtyExtents(c.disks().get(0)), writes);
                c.commit();
            }
            writes.add(write(vm, d, 5 * MIB, 4096, 0x32));
            try (Capture c = hypervisor.capture(
                    owned(b, vm.name(), CheckpointNames.name(b, "1"), CheckpointNames.name(b, "2")))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental())
                        .as("B's checkpoint survived A's capture: %s", e.fullReason())
                        .isTrue();
                assertCovers(dirtyExtents(e), writes);
                assertThat(DiskModel.sha256(read(e))).isEqualTo(vm.model(d).sha256());
                c.commit();
            }
            try (Capture c = hypervisor.capture(
                    owned(a, vm.name(), CheckpointNames.name(a, "2"), CheckpointNames.name(a, "3")))) {
                DiskExport e = c.disks().get(0);
                assertThat(e.incremental())
                        .as("A's checkpoint survived B's capture: %s", e.fullReason())
                        .isTrue();
                assertCovers(dirtyExtents(e), List.of(writes.get(1)));
                c.commit();
            }
        }
    }

    /**
     * After an upgrade, the newest restore point of a repository names a checkpoint without owner
     * ({@code tm-<id>}): the first owned capture is still incremental from it.
     */
    @Test
    void aCheckpointWithoutOwnerFromAnEarlierVersionIsTheParentOfAnOwnedCapture() throws IOException {
        try (GuestVm vm = startVm("ct-upgrade", 16 * MIB)) {
            String d = vm.disks().get(0);
            String a = CheckpointNames.ownerOf("repository A");
            baseline(vm.name());
            List<long[]> w1 = List.of(write(vm, d, 2 * MIB, 4096, 0x41));
            try (Capture c = hypervisor.capture(owned(a, vm.name(), "tm-1", CheckpointNames.name(a, "2")))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertCovers(dirtyExtents(c.disks().get(0)), w1);
                c.commit();
            }
            List<long[]> w2 = List.of(write(vm, d, 7 * MIB, 4096, 0x42));
            try (Capture c = hypervisor.capture(
                    owned(a, vm.name(), CheckpointNames.name(a, "2"), CheckpointNames.name(a, "3")))) {
                assertThat(c.disks().get(0).incremental()).isTrue();
                assertCovers(dirtyExtents(c.disks().get(0)), w2);
                c.commit();
            }
        }
    }

    @Test
    void anUnknownVmIsPermanentAndNamed() {
        assertThatThrownBy(() -> hypervisor.capture(request("no-such-vm", null, "tm-1")))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("no-such-vm");
        assertThat(hypervisor.list()).extracting(VmInfo::name).doesNotContain("no-such-vm");
    }

    @Test
    void anUnreachableHostIsRetriableAndSaysWhere() throws IOException {
        Unreachable u = unreachable();
        try (Hypervisor hv = u.hypervisor()) {
            assertThatThrownBy(() -> hv.capture(request(u.vm(), null, "tm-1")))
                    .isInstanceOf(RetriableException.class)
                    .hasMessageContaining(u.location());
        }
    }

    // ---- helpers

    private static long[] write(GuestVm vm, String disk, long offset, int length, int pattern) {
        vm.write(disk, offset, length, pattern);
        return new long[] {offset, length};
    }

    /**
     * Every written byte lies in a dirty extent, and every dirty extent lies within the grains the
     * writes touched.
     */
    private void assertCovers(List<long[]> dirty, List<long[]> writes) {
        long g = granularity();
        for (long[] w : writes) {
            for (long b = w[0]; b < w[0] + w[1]; b = Math.min(w[0] + w[1], (b / g + 1) * g)) {
                long at = b;
                assertThat(dirty)
                        .as(
                                "a dirty extent covering the write at %d (+%d), byte %d; dirty: %s",
                                w[0], w[1], at, show(dirty))
                        .anyMatch(x -> x[0] <= at && at < x[0] + x[1]);
            }
        }
        for (long[] x : dirty) {
            for (long b = x[0]; b < x[0] + x[1]; b += g) {
                long grain = b / g * g;
                assertThat(writes)
                        .as("dirty grain at %d is touched by a write; dirty: %s", grain, show(dirty))
                        .anyMatch(w -> w[0] < grain + g && grain < w[0] + w[1]);
            }
        }
    }

    private static List<String> show(List<long[]> extents) {
        return extents.stream().map(x -> x[0] + "+" + x[1]).toList();
    }
}
