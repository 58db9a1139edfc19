package io.tidemark.repository;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.FullReason;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.format.RestorePointIds;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.qemu.DiskModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Restorer} on a real file repository: a chain of 50 restore points built with {@link
 * DiskIndexBuilder} as a backup worker would, without QEMU.
 */
class RestorerTest {

    private static final String VM = "vm1";
    private static final String DISK = "sda";
    private static final int CHUNK = 64 * 1024;
    private static final int PER_PAGE = 32;
    private static final int CHUNKS = 300; // 10 pages, the last one partial
    private static final long SIZE = (long) CHUNKS * CHUNK - 4096; // a short last chunk

    @TempDir
    Path dir;

    private final Random random = new Random(7);

    /** Commits a point whose listed chunks get new random data (or zeros), on {@code parent}. */
    private Manifest commit(Repository repo, DiskModel disk, Optional<Manifest> parent, List<Integer> chunks, int n) {
        var index = repo.newIndex(
                SIZE, parent.map(p -> repo.root(Digest.fromHex(p.disks().get(0).index()))));
        for (int c : chunks) {
            int length = (int) Math.min(CHUNK, SIZE - (long) c * CHUNK);
            byte[] data = new byte[length];
            if (random.nextInt(5) != 0) { // one in five becomes zeros
                random.nextBytes(data);
            }
            disk.write((long) c * CHUNK, data);
            index.set(c, repo.putChunk(data, length).digest());
        }
        Instant captured = Instant.parse("2026-11-24T00:00:00Z").plusSeconds(600L * n);
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(captured, random),
                VM,
                "hv1",
                "job-" + n,
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                parent.map(Manifest::id),
                List.of(new DiskEntry(
                        DISK,
                        SIZE,
                        CHUNK,
                        index.finish().hex(),
                        "tm-" + n,
                        parent.isPresent()
                                ? Optional.empty()
                                : Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        0,
                        0)));
        repo.commit(m);
        return m;
    }

    private FileObjectTarget files(String name) throws IOException {
        return new FileObjectTarget(Files.createDirectories(dir.resolve(name)));
    }

    private static Repository open(CountingObjectTarget t) {
        return Repository.openOrInit(t, new RepositoryConfig(1, CHUNK, PER_PAGE));
    }

    @Test
    void theFiftiethIncrementalFetchesOnlyItsOwnIndexAndChunksLikeAFull() throws IOException {
        CountingObjectTarget chainTarget = new CountingObjectTarget(files("chain"));
        Repository chain = open(chainTarget);
        DiskModel disk = new DiskModel(SIZE);
        List<Integer> all = new ArrayList<>();
        for (int c = 0; c < CHUNKS; c++) {
            if (c % 4 != 3) { // every 4th chunk never written: a hole
                all.add(c);
            }
        }
        List<Manifest> points = new ArrayList<>();
        points.add(commit(chain, disk, Optional.empty(), all, 0));
        String firstSha = disk.sha256();
        for (int n = 1; n < 50; n++) {
            List<Integer> changed = List.of(random.nextInt(CHUNKS), random.nextInt(CHUNKS), random.nextInt(CHUNKS));
            points.add(commit(chain, disk, Optional.of(points.get(n - 1)), changed, n));
        }
        String fiftiethSha = disk.sha256();
        Manifest fiftieth = points.get(49);
        assertThat(fiftieth.parent()).contains(points.get(48).id());

        // the same content as one full in a repository of its own
        CountingObjectTarget fullTarget = new CountingObjectTarget(files("full"));
        Repository fullRepo = open(fullTarget);
        var index = fullRepo.newIndex(SIZE, Optional.empty());
        byte[] content = disk.bytes();
        long nonZero = 0;
        for (int c = 0; c < CHUNKS; c++) {
            int length = (int) Math.min(CHUNK, SIZE - (long) c * CHUNK);
            byte[] data = java.util.Arrays.copyOfRange(content, c * CHUNK, c * CHUNK + length);
            Digest d = fullRepo.putChunk(data, length).digest();
            index.set(c, d);
            nonZero += d.isZero() ? 0 : 1;
        }
        Manifest full = new Manifest(
                1,
                "full",
                VM,
                "hv1",
                "job-full",
                fiftieth.capturedAt(),
                fiftieth.committedAt(),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry(
                        DISK,
                        SIZE,
                        CHUNK,
                        index.finish().hex(),
                        "tm",
                        Optional.of(FullReason.of(FullReason.Kind.UNRECORDED, "full")),
                        0,
                        0)));
        fullRepo.commit(full);

        chainTarget.reset();
        Restorer.Result r50 =
                new Restorer(chain, 4).restoreDisk(fiftieth, DISK, dir.resolve("50.raw"), Restorer.Progress.NONE);
        fullTarget.reset();
        Restorer.Result rf =
                new Restorer(fullRepo, 4).restoreDisk(full, DISK, dir.resolve("full.raw"), Restorer.Progress.NONE);

        assertThat(r50.sha256()).isEqualTo(fiftiethSha).isEqualTo(Restorer.sha256(dir.resolve("50.raw")));
        assertThat(rf.sha256()).isEqualTo(fiftiethSha);
        assertThat(Files.size(dir.resolve("50.raw"))).isEqualTo(SIZE);
        // no chain replay: one root, the 10 pages of its own index, one read per non-zero chunk; as a full
        assertThat(chainTarget.gets(ObjectKeys.ROOTS)).isEqualTo(1).isEqualTo(fullTarget.gets(ObjectKeys.ROOTS));
        assertThat(chainTarget.gets(ObjectKeys.PAGES)).isEqualTo(10).isEqualTo(fullTarget.gets(ObjectKeys.PAGES));
        assertThat(chainTarget.gets(ObjectKeys.CHUNKS))
                .isEqualTo(nonZero)
                .isEqualTo(fullTarget.gets(ObjectKeys.CHUNKS))
                .isEqualTo(r50.chunksFetched());
        assertThat(chainTarget.gets(ObjectKeys.MANIFESTS)).isZero();
        assertThat(r50.bytesFetched()).isEqualTo(rf.bytesFetched());

        // and the first point still restores to the first content
        Restorer.Result r1 =
                new Restorer(chain, 4).restoreDisk(points.get(0), DISK, dir.resolve("1.raw"), Restorer.Progress.NONE);
        assertThat(r1.sha256()).isEqualTo(firstSha).isNotEqualTo(fiftiethSha);
    }

    @Test
    void zeroChunksStayHolesInTheRawImage() throws IOException {
        Repository repo = open(new CountingObjectTarget(files("r")));
        DiskModel disk = new DiskModel(SIZE);
        Manifest m = commit(repo, disk, Optional.empty(), List.of(0, 150), 0);
        Path out = dir.resolve("sparse.raw");
        Restorer.Result r = new Restorer(repo, 2).restoreDisk(m, DISK, out, Restorer.Progress.NONE);
        assertThat(r.sha256()).isEqualTo(disk.sha256());
        long allocated = allocatedBytes(out);
        assertThat(allocated).isLessThanOrEqualTo(4L * CHUNK);
        assertThat(Files.exists(dir.resolve("sparse.raw.partial"))).isFalse();
    }

    /** Bytes the file system allocated to {@code file} ({@code stat %b} × 512). */
    static long allocatedBytes(Path file) throws IOException {
        Process p = new ProcessBuilder("stat", "-c", "%b", file.toString()).start();
        try {
            String out = new String(p.getInputStream().readAllBytes()).strip();
            if (p.waitFor() != 0) {
                throw new IOException("stat " + file + " failed");
            }
            return Long.parseLong(out) * 512;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    @Test
    void aCorruptChunkFailsNamingItAndLeavesNoImageNorPartialFile() throws IOException {
        FileObjectTarget files = files("c");
        Repository repo = open(new CountingObjectTarget(files));
        DiskModel disk = new DiskModel(SIZE);
        List<Integer> chunks = new ArrayList<>();
        for (int c = 0; c < 40; c++) {
            chunks.add(c);
        }
        Manifest m = commit(repo, disk, Optional.empty(), chunks, 0);
        String key = files.list(ObjectKeys.CHUNKS).get(5);
        Path object = dir.resolve("c").resolve(key);
        byte[] bad = Files.readAllBytes(object);
        bad[bad.length - 1] ^= 1;
        object.toFile().setWritable(true);
        Files.write(object, bad);
        Path out = dir.resolve("bad.raw");
        List<Long> progress = new ArrayList<>();
        assertThatThrownBy(() -> new Restorer(repo, 4).restoreDisk(m, DISK, out, (done, total) -> {
                    synchronized (progress) {
                        progress.add(done);
                    }
                }))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining(key);
        assertThat(Files.exists(out)).isFalse();
        assertThat(Files.exists(dir.resolve("bad.raw.partial"))).isFalse();
    }

    @Test
    void aTightMemoryBudgetReusesFewBuffersAndRestoresTheSameBytes() throws IOException {
        Repository repo = open(new CountingObjectTarget(files("m")));
        DiskModel disk = new DiskModel(SIZE);
        List<Integer> all = new ArrayList<>();
        for (int c = 0; c < CHUNKS; c++) {
            all.add(c); // random data, zero chunks (holes) and the short last chunk
        }
        Manifest m = commit(repo, disk, Optional.empty(), all, 0);
        // room for one thread: its stored object and two chunk buffers, reused for all 300 chunks
        long budget = Repository.maxObjectBytes(CHUNK) + 2L * CHUNK;
        List<String> threads = new ArrayList<>();
        Path out = dir.resolve("tight.raw");
        try (RawFileSink raw = RawFileSink.create(out, SIZE)) {
            DiskSink sink = new ForwardingSink(raw) {
                @Override
                public void write(long offset, byte[] data, int length) {
                    synchronized (threads) {
                        if (!threads.contains(Thread.currentThread().getName())) {
                            threads.add(Thread.currentThread().getName());
                        }
                    }
                    super.write(offset, data, length);
                }
            };
            Restorer.Result r = new Restorer(repo, 8).withMemory(budget).restore(m, DISK, sink, Restorer.Progress.NONE);
            assertThat(r.sha256()).isEqualTo(disk.sha256());
        }
        assertThat(threads).hasSize(1);
        assertThat(Files.readAllBytes(out)).isEqualTo(disk.read(0, (int) SIZE));
        assertThat(Restorer.sha256(out)).isEqualTo(disk.sha256());
    }

    @Test
    void aLongRunOfHolesBetweenChunksRestoresTheSameBytes() throws IOException {
        long size = 5000L * CHUNK; // more holes in a row than the restorer keeps pending
        Repository repo = Repository.openOrInit(files("holes"), new RepositoryConfig(1, CHUNK, 1024));
        byte[] a = new byte[CHUNK];
        byte[] b = new byte[CHUNK];
        random.nextBytes(a);
        random.nextBytes(b);
        var index = repo.newIndex(size, Optional.empty());
        index.set(0, repo.putChunk(a, CHUNK).digest());
        index.set(4999, repo.putChunk(b, CHUNK).digest());
        Instant captured = Instant.parse("2026-11-24T00:00:00Z");
        Manifest m = new Manifest(
                1,
                RestorePointIds.next(captured, random),
                VM,
                "hv1",
                "job-holes",
                captured,
                captured.plusSeconds(1),
                ConsistencyAchieved.CRASH,
                Trigger.manual(),
                "pol",
                Optional.empty(),
                List.of(new DiskEntry(
                        DISK,
                        size,
                        CHUNK,
                        index.finish().hex(),
                        "tm-holes",
                        Optional.of(FullReason.of(FullReason.Kind.FIRST_BACKUP, "first backup")),
                        0,
                        0)));
        repo.commit(m);
        Path out = dir.resolve("holes.raw");
        Restorer.Result r = new Restorer(repo, 4).restoreDisk(m, DISK, out, Restorer.Progress.NONE);
        assertThat(r.chunksFetched()).isEqualTo(2);
        assertThat(r.sha256()).isEqualTo(Restorer.sha256(out));
        try (var ch = java.nio.channels.FileChannel.open(out)) {
            assertThat(ch.size()).isEqualTo(size);
            java.nio.ByteBuffer first = java.nio.ByteBuffer.allocate(CHUNK);
            ch.read(first, 0);
            assertThat(first.array()).isEqualTo(a);
            java.nio.ByteBuffer last = java.nio.ByteBuffer.allocate(CHUNK);
            ch.read(last, 4999L * CHUNK);
            assertThat(last.array()).isEqualTo(b);
        }
    }

    @Test
    void theWindowFitsTheMemoryBudget() {
        int object = Repository.maxObjectBytes(CHUNK);
        assertThat(Restorer.Window.of(Restorer.DEFAULT_MEMORY_BYTES, 256 << 10, 8))
                .isEqualTo(new Restorer.Window(8, 32));
        assertThat(Restorer.Window.of(4L * (object + CHUNK), CHUNK, 8)).isEqualTo(new Restorer.Window(4, 4));
        assertThat(Restorer.Window.of(1, CHUNK, 8)).isEqualTo(new Restorer.Window(1, 1));
    }

    @Test
    void aFailingWriteFailsTheRestoreAtOnceClosesTheSinkOnlyOnceNoWriteIsInFlightAndLeavesNoImage() throws Exception {
        Repository repo = open(new CountingObjectTarget(files("w")));
        DiskModel disk = new DiskModel(SIZE);
        List<Integer> chunks = new ArrayList<>();
        for (int c = 0; c < 8; c++) {
            chunks.add(c);
        }
        Manifest m = commit(repo, disk, Optional.empty(), chunks, 0);
        int nonZero = 0;
        long firstOffset = -1;
        long failOffset = -1;
        IndexPage page = repo.page(
                repo.root(Digest.fromHex(m.disks().get(0).index())).pages().get(0));
        for (int i = 0; i < chunks.size(); i++) {
            if (!page.get(i).isZero()) {
                if (nonZero == 0) {
                    firstOffset = (long) i * CHUNK;
                } else if (nonZero == 1) {
                    failOffset = (long) i * CHUNK;
                }
                nonZero++;
            }
        }
        assertThat(nonZero).isGreaterThanOrEqualTo(2);
        long blocked = firstOffset;
        long failing = failOffset;
        Path out = dir.resolve("failed.raw");
        java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicInteger writing = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicBoolean outlived = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger writingAtClose = new java.util.concurrent.atomic.AtomicInteger(-1);
        RawFileSink raw = RawFileSink.create(out, SIZE);
        DiskSink sink = new ForwardingSink(raw) {
            @Override
            public void write(long offset, byte[] data, int length) {
                writing.incrementAndGet();
                try {
                    if (offset == blocked) {
                        entered.countDown();
                        try {
                            if (!release.await(20, java.util.concurrent.TimeUnit.SECONDS)) {
                                outlived.set(true); // the restore waited for it instead of failing at once
                            }
                        } catch (InterruptedException e) {
                            // a write that takes a while to notice: it still runs when a restore that
                            // does not wait for its threads would already close the sink
                            release.await(2, java.util.concurrent.TimeUnit.SECONDS);
                            throw e;
                        }
                    } else if (offset == failing) {
                        entered.await(30, java.util.concurrent.TimeUnit.SECONDS);
                        throw new io.tidemark.core.PermanentException(
                                "cannot write " + out + " at offset " + offset + ": No space left on device");
                    }
                    super.write(offset, data, length);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new io.tidemark.core.RetriableException("interrupted", e);
                } finally {
                    writing.decrementAndGet();
                }
            }

            @Override
            public void close() {
                writingAtClose.set(writing.get());
                release.countDown();
                super.close();
            }
        };
        assertThatThrownBy(() -> {
                    try (sink) {
                        new Restorer(repo, 4).restore(m, DISK, sink, Restorer.Progress.NONE);
                    }
                })
                .isInstanceOf(io.tidemark.core.PermanentException.class)
                .hasMessageContaining("at offset " + failing);
        assertThat(outlived).isFalse();
        assertThat(writingAtClose.get()).isZero();
        assertThat(Files.exists(out)).isFalse();
        assertThat(Files.exists(dir.resolve("failed.raw.partial"))).isFalse();
    }

    /** A sink that passes everything to another; tests override what they watch. */
    private static class ForwardingSink implements DiskSink {
        private final DiskSink delegate;

        ForwardingSink(DiskSink delegate) {
            this.delegate = delegate;
        }

        @Override
        public void write(long offset, byte[] data, int length) {
            delegate.write(offset, data, length);
        }

        @Override
        public void commit() {
            delegate.commit();
        }

        @Override
        public String describe() {
            return delegate.describe();
        }

        @Override
        public String format() {
            return delegate.format();
        }

        @Override
        public void close() {
            delegate.close();
        }
    }
}
