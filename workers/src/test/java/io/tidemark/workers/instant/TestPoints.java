package io.tidemark.workers.instant;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/** Commits restore points of known content, for instant restore tests and the benchmark. */
public final class TestPoints {

    private TestPoints() {}

    /**
     * An image of {@code size} bytes: random chunks, with every {@code zeroEvery}-th chunk (if > 0)
     * all zero, so the point has holes.
     */
    public static byte[] image(long size, int chunkSize, int zeroEvery, long seed) {
        byte[] img = new byte[Math.toIntExact(size)];
        new Random(seed).nextBytes(img);
        if (zeroEvery > 0) {
            for (long c = 0; c * chunkSize < size; c += zeroEvery) {
                int from = (int) (c * chunkSize);
                Arrays.fill(img, from, (int) Math.min(size, from + (long) chunkSize), (byte) 0);
            }
        }
        return img;
    }

    /** Commits {@code image} as the one disk {@code disk} of a full restore point of {@code vm}. */
    public static Manifest commit(Repository repo, String vm, String disk, byte[] image) {
        int chunk = repo.config().chunkSize();
        DiskIndexBuilder index = repo.newIndex(image.length, Optional.empty());
        for (long c = 0; c * chunk < image.length; c++) {
            int from = (int) (c * chunk);
            int len = Math.min(chunk, image.length - from);
            byte[] data = Arrays.copyOfRange(image, from, from + len);
            index.set(c, repo.putChunk(data, len).digest());
        }
        Digest root = index.finish();
        Instant now = Instant.now();
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(now, new Random()),
                vm,
                "hv1",
                "job-" + vm,
                now,
                now,
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry(
                        disk,
                        image.length,
                        chunk,
                        root.hex(),
                        "tm-1",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }
}
