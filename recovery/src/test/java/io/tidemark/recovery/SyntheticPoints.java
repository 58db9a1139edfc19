package io.tidemark.recovery;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/** Commits restore points of given disk contents straight into a repository, without a hypervisor (fast tests). */
final class SyntheticPoints {

    private SyntheticPoints() {}

    /** A point of {@code vm} with one disk {@code sd0} holding {@code image}, as policy {@code p}'s firing at {@code at}. */
    static Manifest commit(Repository repo, String vm, Instant at, byte[] image) {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(image.length, Optional.empty());
        for (int i = 0; i * chunk < image.length; i++) {
            byte[] c = Arrays.copyOfRange(image, i * chunk, Math.min(image.length, (i + 1) * chunk));
            index.set(i, repo.putChunk(c, c.length).digest());
        }
        Digest root = index.finish();
        DiskEntry disk = new DiskEntry(
                "sd0", image.length, chunk, root.hex(), "tm-x", Optional.empty(), image.length, image.length);
        Manifest m = new Manifest(
                1,
                String.format("%013d-%s", at.toEpochMilli(), vm),
                vm,
                "hv1",
                "p/" + vm + "/" + at.toEpochMilli(),
                at,
                at.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.schedule("p"),
                "p",
                Optional.empty(),
                List.of(disk));
        repo.commit(m);
        return m;
    }

    /** {@code size} bytes: {@code fill} in the first chunk-sized quarter, zeros elsewhere. */
    static byte[] image(int size, int fill) {
        byte[] b = new byte[size];
        Arrays.fill(b, 0, size / 4, (byte) fill);
        return b;
    }
}
