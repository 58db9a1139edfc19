package io.tidemark.replicator;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.Repository;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.Collection;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Commits restore points of one single-disk VM to a primary repository, as a backup worker would:
 * the chunks named in each call get fresh random data, everything else is inherited from the
 * parent (or zero). For replication tests and benchmarks.
 */
final class RestorePoints {

    static final String DISK = "sda";

    private final Repository primary;
    private final String vm;
    private final long diskSize;
    private final Random random;
    private int points;
    /**
     * The disk image of each point, kept apart from the repository (chunk number to its bytes, absent
     * meaning zeros), when {@link #withImages()} asked for it; null otherwise (benchmarks).
     */
    private Map<String, Map<Integer, byte[]>> images;

    RestorePoints(Repository primary, String vm, int diskChunks, long seed) {
        this.primary = primary;
        this.vm = vm;
        this.diskSize = (long) diskChunks * primary.config().chunkSize();
        this.random = new Random(seed);
    }

    /** Also keeps the bytes written, so that {@link #sha256} can say what a restore must give. */
    RestorePoints withImages() {
        images = new HashMap<>();
        return this;
    }

    /**
     * The SHA-256 of the whole disk of {@code m} as this class wrote it, computed from the bytes it
     * generated, not from the repository: what a restore of {@code m} from any repository must give.
     */
    String sha256(Manifest m) {
        if (images == null) {
            throw new IllegalStateException("create with withImages() to compute image checksums");
        }
        Map<Integer, byte[]> image = images.get(m.id());
        if (image == null) {
            throw new IllegalArgumentException("restore point " + m.id() + " was not written here");
        }
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            int chunkSize = primary.config().chunkSize();
            byte[] zeros = new byte[chunkSize];
            for (int c = 0; c < diskSize / chunkSize; c++) {
                md.update(image.getOrDefault(c, zeros));
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A full restore point whose listed chunks hold random data, the rest zeros. */
    Manifest full(Collection<Integer> chunks) {
        return commit(Optional.empty(), chunks);
    }

    /** A full restore point whose first {@code n} chunks hold random data. */
    Manifest full(int n) {
        return full(IntStream.range(0, n).boxed().toList());
    }

    /** An incremental on {@code parent}, the listed chunks rewritten with new random data. */
    Manifest incremental(Manifest parent, Collection<Integer> chunks) {
        return commit(Optional.of(parent), chunks);
    }

    /** The keys of the non-zero chunks restore point {@code m} references, in disk order. */
    List<String> chunkKeys(Manifest m) {
        var root = primary.root(Digest.fromHex(m.disk(DISK).orElseThrow().index()));
        return root.pages().stream()
                .map(primary::page)
                .flatMap(page -> IntStream.range(0, page.size()).mapToObj(page::get))
                .filter(d -> !d.isZero())
                .map(ObjectKeys::chunk)
                .toList();
    }

    private Manifest commit(Optional<Manifest> parent, Collection<Integer> chunks) {
        int chunkSize = primary.config().chunkSize();
        var index = primary.newIndex(
                diskSize,
                parent.map(p ->
                        primary.root(Digest.fromHex(p.disk(DISK).orElseThrow().index()))));
        byte[] data = new byte[chunkSize];
        Map<Integer, byte[]> image = images == null
                ? null
                : new HashMap<>(parent.map(p -> images.get(p.id())).orElse(Map.of()));
        for (int c : chunks) {
            random.nextBytes(data);
            index.set(c, primary.putChunk(data, chunkSize).digest());
            if (image != null) {
                image.put(c, data.clone());
            }
        }
        Digest root = index.finish();
        Instant captured = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(60L * points++);
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(captured, random),
                vm,
                "hv1",
                "job-" + points,
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(Manifest::id),
                List.of(new DiskEntry(
                        DISK,
                        diskSize,
                        chunkSize,
                        root.hex(),
                        "tm-" + points,
                        parent.isPresent()
                                ? Optional.empty()
                                : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        (long) chunks.size() * chunkSize, // each written chunk read and stored new
                        (long) chunks.size() * chunkSize)));
        primary.commit(m);
        if (image != null) {
            images.put(m.id(), image);
        }
        return m;
    }
}
