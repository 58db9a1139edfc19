package io.tidemark.repository.maintenance;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RestorePointIds;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Writes restore points of one single-disk VM as a backup would, and remembers each point's disk
 * image, so tests can compare what a restore produces with what was backed up.
 */
final class Points {

    static final String DISK = "sda";

    private final Repository repository;
    private final String vm;
    private final int chunks;
    private final Random random;
    private int count;

    Points(Repository repository, String vm, int chunks, long seed) {
        this.repository = repository;
        this.vm = vm;
        this.chunks = chunks;
        this.random = new Random(seed);
    }

    /** A written-but-uncommitted point: its objects are in the repository, its manifest is not. */
    record Pending(Manifest manifest, byte[] image) {}

    /** A point whose chunks {@code rewrite} get new random data on top of {@code parent}'s image. */
    Pending write(Optional<Pending> parent, List<Integer> rewrite) {
        int chunkSize = repository.config().chunkSize();
        long size = (long) chunks * chunkSize;
        byte[] image = parent.map(p -> p.image().clone()).orElse(new byte[(int) size]);
        DiskIndexBuilder index = repository.newIndex(
                size,
                parent.map(p -> repository.root(
                        Digest.fromHex(p.manifest().disks().get(0).index()))));
        byte[] data = new byte[chunkSize];
        for (int c : rewrite) {
            random.nextBytes(data);
            System.arraycopy(data, 0, image, c * chunkSize, chunkSize);
            index.set(c, repository.putChunk(data, chunkSize).digest());
        }
        return manifest(parent, index.finish(), image);
    }

    /** An uncommitted point of {@code root} (as {@link #write} makes it), its image as given. */
    Pending manifest(Optional<Pending> parent, Digest root, byte[] image) {
        int chunkSize = repository.config().chunkSize();
        long size = (long) chunks * chunkSize;
        Instant at = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(60L * count++);
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(at, random),
                vm,
                "hv1",
                "job-" + vm + "-" + count,
                at,
                at.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(p -> p.manifest().id()),
                List.of(new DiskEntry(
                        DISK,
                        size,
                        chunkSize,
                        root.hex(),
                        "tm-" + count,
                        parent.isPresent()
                                ? Optional.empty()
                                : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first")),
                        0,
                        0)));
        return new Pending(m, image);
    }

    /**
     * A point where, in each chunk of {@code patched}, {@code bytes} random bytes at the offset given
     * change on top of {@code parent}'s image, stored as a backup with patches does (ADR 15): one
     * patch on the parent's base chunk holding the parent's patch ranges and the new ones.
     */
    Pending patched(Pending parent, Map<Integer, Integer> patched, int bytes) {
        return patched(parent, patched, bytes, false);
    }

    private Pending patched(Pending parent, Map<Integer, Integer> patched, int bytes, boolean packed) {
        int chunkSize = repository.config().chunkSize();
        long size = (long) chunks * chunkSize;
        byte[] image = parent.image().clone();
        DiskIndexBuilder index = repository.newIndex(
                size,
                Optional.of(repository.root(
                        Digest.fromHex(parent.manifest().disks().get(0).index()))));
        for (Map.Entry<Integer, Integer> e : new java.util.TreeMap<>(patched).entrySet()) {
            byte[] data = new byte[bytes];
            random.nextBytes(data);
            int c = e.getKey();
            System.arraycopy(data, 0, image, c * chunkSize + e.getValue(), bytes);
            DiskIndexBuilder.Entry was = index.parentEntry(c);
            Map<Integer, byte[]> changed = Map.of(e.getValue(), data);
            ChunkPatch patch = was.patch().isNone()
                    ? ChunkPatch.of(was.chunk(), chunkSize, changed)
                    : repository.patchOf(was.chunk(), was.patch(), chunkSize).with(changed);
            if (packed) {
                index.setPatched(c, patch);
            } else {
                index.setPatched(c, was.chunk(), repository.putPatch(patch).digest());
            }
        }
        return commit(manifest(Optional.of(parent), index.finish(), image));
    }

    /**
     * As {@link #patched}, stored as a backup stores patches since ADR 26: in packs of the page's
     * patches, written when the index is finished.
     */
    Pending packed(Pending parent, Map<Integer, Integer> patched, int bytes) {
        return patched(parent, patched, bytes, true);
    }

    Pending commit(Pending p) {
        repository.commit(p.manifest());
        return p;
    }

    Pending full(int dataChunks) {
        return commit(
                write(Optional.empty(), IntStream.range(0, dataChunks).boxed().toList()));
    }

    Pending incremental(Pending parent, List<Integer> rewrite) {
        return commit(write(Optional.of(parent), rewrite));
    }

    /** The keys of the non-zero chunks (and patches, ADR 15) {@code p} references. */
    List<String> chunkKeys(Pending p) {
        var root = repository.root(Digest.fromHex(p.manifest().disks().get(0).index()));
        return root.pages().stream()
                .map(repository::page)
                .flatMap(page -> IntStream.range(0, page.size())
                        .boxed()
                        .flatMap(i -> java.util.stream.Stream.of(page.get(i), page.patch(i))))
                .filter(d -> !d.isZero())
                .map(ObjectKeys::chunk)
                .distinct()
                .toList();
    }

    PointRef ref(Pending p) {
        return new PointRef(vm, p.manifest().id());
    }

    static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(sha().digest(bytes));
    }

    private static MessageDigest sha() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The digest of {@code p}'s first index page. */
    Digest firstPage(Pending p) {
        return repository
                .root(Digest.fromHex(p.manifest().disks().get(0).index()))
                .pages()
                .get(0);
    }

    /** A verify of the whole repository, {@code deep} or not. */
    Verifier.Report verify(boolean deep) {
        return new Verifier(repository, 2).verify(deep, null, Restorer.Progress.NONE, Restorer.Progress.NONE);
    }

    /** Restores {@code p} under {@code tmp} and checks it is {@code p}'s image byte for byte. */
    void assertRestores(Pending p, java.nio.file.Path tmp) throws java.io.IOException {
        java.nio.file.Path out = tmp.resolve(p.manifest().id() + ".raw");
        Restorer.Result r = new Restorer(repository, 2).restoreDisk(p.manifest(), DISK, out, Restorer.Progress.NONE);
        org.assertj.core.api.Assertions.assertThat(r.sha256())
                .as("restore of %s", p.manifest().id())
                .isEqualTo(sha256(p.image()));
        java.nio.file.Files.delete(out);
    }

    /**
     * Forgets {@code forgotten} (deletes their manifests) and collects garbage twice, an hour past the
     * grace apart, so what only they needed is swept; the second run's result.
     */
    GarbageCollector.Result forgetAndCollect(
            io.tidemark.testkit.FakeClock clock,
            io.tidemark.testkit.InMemoryObjectTarget memory,
            Pending... forgotten) {
        for (Pending p : forgotten) {
            memory.delete(
                    io.tidemark.format.ObjectKeys.manifest(vm, p.manifest().id()));
        }
        GarbageCollector gc = new GarbageCollector(
                repository, clock, GarbageCollector.Settings.withGrace(java.time.Duration.ofHours(1)));
        gc.run(false, Restorer.Progress.NONE);
        clock.advance(java.time.Duration.ofHours(2));
        return gc.run(false, Restorer.Progress.NONE);
    }
}
