package io.tidemark.workers.rbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.testkit.ceph.CephCluster;
import io.tidemark.testkit.ceph.CephClusterExtension;
import io.tidemark.workers.nbd.Extent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link RbdChangeTracker} on the throwaway Ceph: known writes through QEMU's rbd driver ({@code
 * qemu-io}) between two snapshots come back as exactly those extents (at object granularity with
 * fast-diff), writes before the base snapshot do not, discards do.
 */
@ExtendWith(CephClusterExtension.class)
class RbdChangeTrackerIT {

    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long OBJECT = 4 * MIB; // rbd's default object size (order 22)
    private static final long CHUNK = 256 * KIB; // Tidemark's default chunk
    private static final String POOL = "rbdtrack";

    private static CephCluster ceph;
    private static RbdChangeTracker rbd;

    @BeforeAll
    static void cluster(CephCluster shared) {
        ceph = shared;
        ceph.createPool(POOL);
        cli("rbd", "pool", "init", POOL);
        rbd = RbdChangeTracker.of(ceph.confFile(), "admin", Duration.ofSeconds(60));
    }

    @Test
    void withFastDiffTheChangesAreTheWholeObjectsWrittenOrDiscardedBetweenTheTwoSnapshots() {
        RbdImage img = image("fastdiff", "layering,exclusive-lock,object-map,fast-diff");
        assertThat(rbd.info(img).fastDiff()).isTrue();
        write(img, "write -P 0x11 0 64k", "write -P 0x22 10M 4k", "write -P 0x23 20M 4k");
        rbd.createSnapshot(img, "tm-1");
        // librbd drops discards smaller than rbd_discard_granularity_bytes (64 KiB): discard whole objects
        write(img, "write -P 0x33 20M 4k", "write -P 0x44 33M 8k", "discard 8M 4M");
        rbd.createSnapshot(img, "tm-2");

        RbdChangeTracker.Changes c = rbd.changes(img, "tm-1", "tm-2").orElseThrow();

        assertThat(c.wholeObjects()).isTrue();
        assertThat(c.objectSize()).isEqualTo(OBJECT);
        // objects 2 (discard at 10M), 5 (20M) and 8 (33M); not object 0, written before tm-1
        assertThat(c.extents())
                .containsExactly(
                        new Extent(8 * MIB, OBJECT, Extent.DIRTY),
                        new Extent(20 * MIB, OBJECT, Extent.DIRTY),
                        new Extent(32 * MIB, OBJECT, Extent.DIRTY));
        assertThat(chunks(c.extents())).hasSize(3 * (int) (OBJECT / CHUNK));
    }

    @Test
    void withoutFastDiffTheChangesAreTheWrittenAndDiscardedRanges() {
        RbdImage img = image("exact", "layering,exclusive-lock");
        assertThat(rbd.info(img).fastDiff()).isFalse();
        // every object touched later exists in tm-1 at its full length, so the OSD reports the written
        // ranges exactly (a write that makes an object longer reports everything from its old end)
        write(img, "write -P 0x11 0 64k", "write -P 0x12 24572k 4k", "write -P 0x13 36860k 4k");
        rbd.createSnapshot(img, "tm-1");
        write(img, "discard 0 64k", "write -P 0x33 21M 4k", "write -P 0x44 33M 8k");
        rbd.createSnapshot(img, "tm-2");

        RbdChangeTracker.Changes c = rbd.changes(img, "tm-1", "tm-2").orElseThrow();

        assertThat(c.wholeObjects()).isFalse();
        assertThat(c.extents())
                .containsExactly(
                        new Extent(0, 64 * KIB, Extent.DIRTY),
                        new Extent(21 * MIB, 4 * KIB, Extent.DIRTY),
                        new Extent(33 * MIB, 8 * KIB, Extent.DIRTY));
        assertThat(chunks(c.extents())).containsExactly(0L, 21 * MIB / CHUNK, 33 * MIB / CHUNK);
        // and nothing from tm-2 to tm-2
        assertThat(rbd.changes(img, "tm-2", "tm-2").orElseThrow().extents()).isEmpty();
    }

    @Test
    void aMissingBaseSnapshotGivesNoChangesSoTheCallerReadsTheWholeDisk() {
        RbdImage img = image("nobase", "layering,exclusive-lock,object-map,fast-diff");
        rbd.createSnapshot(img, "tm-1");
        rbd.createSnapshot(img, "tm-2");
        assertThat(rbd.deleteSnapshot(img, "tm-1")).isTrue();

        assertThat(rbd.changes(img, "tm-1", "tm-2")).isEmpty();
        assertThatThrownBy(() -> rbd.changes(img, "tm-2", "tm-3"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(img.spec("tm-3"));
    }

    @Test
    void reconcileRemovesOurLeftoversButKeepsTheBaseAndOtherToolsSnapshots() {
        RbdImage img = image("leftovers", "layering,exclusive-lock,object-map,fast-diff");
        for (String s : List.of("tm-1", "tm-2", "tm-3", "nightly")) {
            rbd.createSnapshot(img, s);
        }
        assertThatThrownBy(() -> rbd.createSnapshot(img, "tm-3"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("exists already");

        assertThat(rbd.reconcile(img, "tm-", Optional.of("tm-2"))).containsExactly("tm-1", "tm-3");

        assertThat(rbd.snapshots(img)).containsExactly("tm-2", "nightly");
        assertThat(rbd.deleteSnapshot(img, "tm-1")).isFalse();
    }

    @Test
    void aMissingImageIsPermanentAndAnUnreachableClusterIsRetriable() {
        RbdImage missing = RbdImage.of(POOL, "nosuch");
        assertThatThrownBy(() -> rbd.snapshots(missing))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining(POOL + "/nosuch")
                .hasMessageContaining("does not exist");
        assertThatThrownBy(() -> rbd.changes(RbdImage.of("nopool", "img"), "tm-1", "tm-2"))
                .isInstanceOf(PermanentException.class);

        RbdChangeTracker unreachable = new RbdChangeTracker(
                List.of("-c", ceph.confFile().toString(), "--id", "admin", "--mon-host", "127.0.0.1:1"),
                Duration.ofSeconds(6));
        assertThatThrownBy(() -> unreachable.snapshots(RbdImage.of(POOL, "any")))
                .isInstanceOf(RetriableException.class)
                .hasMessageContaining("unreachable");
    }

    private static RbdImage image(String name, String features) {
        RbdImage img = RbdImage.of(POOL, name);
        cli("rbd", "create", "--size", "64M", "--image-feature", features, img.spec());
        return img;
    }

    /** Writes through QEMU's rbd block driver, as a guest's disk would be written. */
    private static void write(RbdImage img, String... ops) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        for (String op : ops) {
            cmd.add("-c");
            cmd.add(op);
        }
        cmd.add("rbd:" + img.spec() + ":conf=" + ceph.confFile());
        ExternalCommand.of(cmd).run();
    }

    private static void cli(String... args) {
        ExternalCommand.of(List.of(args))
                .env("CEPH_CONF", ceph.confFile().toString())
                .run();
    }

    /** The chunks a backup reads for these dirty extents. */
    private static TreeSet<Long> chunks(List<Extent> extents) {
        TreeSet<Long> out = new TreeSet<>();
        for (Extent e : extents) {
            for (long c = e.offset() / CHUNK; c * CHUNK < e.end(); c++) {
                out.add(c);
            }
        }
        return out;
    }
}
