package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.repository.DiskEntry;
import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.repository.DiskIndexBuilder;
import io.tidemark.repository.Repository;
import io.tidemark.testkit.InMemoryObjectTarget;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiskCheckTest {

    @TempDir
    Path dir;

    @Test
    void theDigestCheckPassesOnTheImageAndNamesTheFirstChunkThatDiffers() throws Exception {
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        long size = 4L * chunk;
        byte[] image = new byte[(int) size];
        Arrays.fill(image, 0, chunk, (byte) 0x11);
        Arrays.fill(image, 2 * chunk, 3 * chunk, (byte) 0x22); // chunks 1 and 3 stay zero
        DiskIndexBuilder index = repo.newIndex(size, Optional.empty());
        for (int i = 0; i < 4; i++) {
            byte[] c = Arrays.copyOfRange(image, i * chunk, (i + 1) * chunk);
            index.set(i, repo.putChunk(c, chunk).digest());
        }
        Digest root = index.finish();
        DiskEntry disk = new DiskEntry("sd0", size, chunk, root.hex(), "tm-x", Optional.empty(), size, size);
        Path file = dir.resolve("sd0.raw");
        Files.write(file, image);

        assertThat(DiskCheck.isExt(file)).isFalse();
        DiskCheck.Outcome ok = DiskCheck.check(repo, disk, file);
        assertThat(ok.check()).isEqualTo(DiskCheck.DIGESTS);
        assertThat(ok.passed()).isTrue();

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1}), 3L * chunk + 7); // into a zero chunk
        }
        DiskCheck.Outcome bad = DiskCheck.check(repo, disk, file);
        assertThat(bad.passed()).isFalse();
        assertThat(bad.report()).startsWith("chunk 3 at offset " + 3L * chunk + " differs");
    }

    @Test
    void aPatchedChunkIsCheckedAsItsBaseWithItsPatch() throws Exception {
        // ADR 15: chunk 0 has a 4 KiB patch over its base, chunk 1 a patch over zeros
        Repository repo = Repository.openOrInit(new InMemoryObjectTarget(), RepositoryConfig.defaults());
        int chunk = repo.config().chunkSize();
        long size = 2L * chunk;
        byte[] image = new byte[(int) size];
        Arrays.fill(image, 0, chunk, (byte) 0x11);
        DiskIndexBuilder full = repo.newIndex(size, Optional.empty());
        full.set(0, repo.putChunk(Arrays.copyOf(image, chunk), chunk).digest());
        Digest fullRoot = full.finish();
        DiskIndexBuilder index = repo.newIndex(size, Optional.of(repo.root(fullRoot)));
        byte[] change = new byte[4096];
        Arrays.fill(change, (byte) 0x33);
        for (int c = 0; c < 2; c++) {
            DiskIndexBuilder.Entry was = index.parentEntry(c);
            Digest patch = repo.putPatch(ChunkPatch.of(was.chunk(), chunk, Map.of(8192, change)))
                    .digest();
            index.setPatched(c, was.chunk(), patch);
            System.arraycopy(change, 0, image, c * chunk + 8192, change.length);
        }
        Digest root = index.finish();
        DiskEntry disk = new DiskEntry("sd0", size, chunk, root.hex(), "tm-y", Optional.empty(), size, size);
        Path file = dir.resolve("patched.raw");
        Files.write(file, image);
        assertThat(DiskCheck.check(repo, disk, file).passed()).isTrue();

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {0x11}), 8192); // the base's byte where the patch wrote
        }
        DiskCheck.Outcome bad = DiskCheck.check(repo, disk, file);
        assertThat(bad.passed()).isFalse();
        assertThat(bad.report()).startsWith("chunk 0 at offset 0 differs");
    }
}
