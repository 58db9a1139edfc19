package io.tidemark.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.repository.maintenance.Verifier;
import io.tidemark.testkit.qemu.QemuVm;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Incrementals of scattered 4 KiB writes on real QEMU (ADR 15): only the dirty 16 KiB grains are
 * read and stored, as patches on the parent's chunks; a chunk changed again gets one patch holding
 * the old and the new ranges (never a patch on a patch); past a quarter of the chunk it is stored
 * whole. Every point restores to the SHA-256 the guest disk had when it was taken, and a deep
 * verify finds every patch and its base. The patches of one backup are stored as a pack per page
 * (ADR 26).
 */
class PatchedIncrementalIT {

    private static final int MIB = 1 << 20;
    private static final int KIB4 = 4096;
    private static final int CHUNK = RepositoryConfig.defaults().chunkSize();
    private static final int GRAIN = 16 * 1024;

    @TempDir
    Path dir;

    private QmpRig rig;
    private Repository repo;
    private QmpHypervisor hv;
    private BackupWorker worker;
    private int pattern = 1;

    @BeforeEach
    void setUp() throws IOException {
        rig = new QmpRig(dir);
        repo = rig.repo;
        hv = rig.hv;
        worker = rig.worker;
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void scatteredFourKibWritesAreStoredAsBoundedPatchesAndEveryPointRestoresByteForByte() throws IOException {
        try (QemuVm vm = QemuVm.start(dir, "pi1", 16L * MIB)) {
            for (int c = 0; c < 16; c++) {
                vm.write("sd0", (long) c * CHUNK, CHUNK, pattern++);
            }
            Map<Manifest, String> points = new LinkedHashMap<>();
            Manifest full = backup("pi1", vm, points);
            assertThat(full.disk("sd0").orElseThrow().bytesNew()).isEqualTo(16L * CHUNK);

            // 12 scattered 4 KiB writes in 12 chunks, one of them into a chunk that was zero
            for (int c = 0; c < 12; c++) {
                int chunk = c == 11 ? 40 : c;
                vm.write("sd0", (long) chunk * CHUNK + (long) (c % 7) * 5 * KIB4, KIB4, pattern++);
            }
            long chunksBefore = chunkObjects();
            Manifest first = backup("pi1", vm, points);
            DiskEntry d1 = first.disk("sd0").orElseThrow();
            assertThat(d1.fullReason()).isEmpty();
            assertThat(d1.bytesRead()).as("one 16 KiB grain per write").isEqualTo(12L * GRAIN);
            assertThat(d1.bytesNew()).as("the grains, not whole chunks").isEqualTo(12L * GRAIN);
            assertThat(chunkObjects() - chunksBefore)
                    .as("12 patches in one pack (ADR 26)")
                    .isEqualTo(1);
            assertThat(patchedEntries(first)).isEqualTo(12);

            // chunk 1 again, another grain: one patch of both grains on the same base
            vm.write("sd0", CHUNK + 9L * GRAIN, KIB4, pattern++);
            Manifest second = backup("pi1", vm, points);
            DiskEntry d2 = second.disk("sd0").orElseThrow();
            assertThat(d2.bytesRead()).isEqualTo(GRAIN);
            assertThat(d2.bytesNew()).as("the old grain and the new one").isEqualTo(2L * GRAIN);
            assertThat(patchedEntries(second)).isEqualTo(12);

            // chunk 1 past a quarter of the chunk (64 KiB): read and stored whole, no patch left
            for (int g = 10; g < 13; g++) {
                vm.write("sd0", CHUNK + (long) g * GRAIN, KIB4, pattern++);
            }
            Manifest third = backup("pi1", vm, points);
            DiskEntry d3 = third.disk("sd0").orElseThrow();
            assertThat(d3.bytesRead()).as("the grains, then the chunk whole").isEqualTo(3L * GRAIN + CHUNK);
            assertThat(d3.bytesNew()).isEqualTo(CHUNK);
            assertThat(patchedEntries(third)).isEqualTo(11);

            for (Map.Entry<Manifest, String> p : points.entrySet()) {
                assertRestores(p.getKey(), p.getValue());
            }
            Verifier.Report deep =
                    new Verifier(repo, 2).verify(true, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
            assertThat(deep.problems()).isEmpty();
            assertThat(deep.chunks())
                    .as("16 + 1 chunks, a pack of 12 patches and one of chunk 1's second patch")
                    .isEqualTo(19);
        }
    }

    private Manifest backup(String vmName, QemuVm vm, Map<Manifest, String> points) {
        Manifest m = rig.backup(vmName);
        points.put(m, vm.model("sd0").sha256()); // nothing writes while the test backs up
        return m;
    }

    private long chunkObjects() {
        return rig.chunkObjects();
    }

    private int patchedEntries(Manifest m) {
        IndexRoot root = repo.root(Digest.fromHex(m.disk("sd0").orElseThrow().index()));
        int n = 0;
        for (Digest p : root.pages()) {
            IndexPage page = repo.page(p);
            n += page.patchCount();
        }
        return n;
    }

    private void assertRestores(Manifest m, String sha256) throws IOException {
        Path out = dir.resolve("restored-" + m.id() + ".raw");
        String sha = new Restorer(repo, 4)
                .restoreDisk(m, "sd0", out, Restorer.Progress.NONE)
                .sha256();
        assertThat(sha).as("restored sd0 of %s", m.id()).isEqualTo(sha256);
        Files.delete(out);
    }
}
