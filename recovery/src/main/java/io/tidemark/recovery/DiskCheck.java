package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.format.Digest;
import io.tidemark.format.IndexPage;
import io.tidemark.format.IndexRoot;
import io.tidemark.repository.Repository;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * Checks a restored disk image: {@code e2fsck -fn} when it holds an ext2/3/4 file system (its
 * superblock magic 0xEF53 at byte 1080), otherwise a re-read of the image compared chunk by chunk
 * with the restore point's index.
 */
public final class DiskCheck {

    static final String E2FSCK = "e2fsck";
    public static final String DIGESTS = "chunk-digests";

    private static final long EXT_MAGIC_OFFSET = 1024 + 56;

    /** What a check found. */
    public record Outcome(String check, boolean passed, String report) {}

    private DiskCheck() {}

    public static Outcome check(Repository repo, DiskEntry disk, Path image) {
        return isExt(image) ? e2fsck(image) : digests(repo, disk, image);
    }

    static boolean isExt(Path image) {
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(2);
            if (ch.size() < EXT_MAGIC_OFFSET + 2) {
                return false;
            }
            ch.read(b, EXT_MAGIC_OFFSET);
            return (b.get(0) & 0xff) == 0x53 && (b.get(1) & 0xff) == 0xef;
        } catch (IOException e) {
            throw new PermanentException("cannot read " + image + ": " + e.getMessage(), e);
        }
    }

    /** {@code e2fsck -fn}: forced, read-only; exit 0 means clean. */
    static Outcome e2fsck(Path image) {
        ExternalCommand.Result r = ExternalCommand.of(locate(E2FSCK), "-fn", image.toString())
                .timeout(Duration.ofMinutes(30))
                .mergeStderr()
                .ifMissing("install e2fsprogs")
                .runForExit();
        return new Outcome(E2FSCK, r.exitCode() == 0, "e2fsck -fn exit " + r.exitCode() + "\n" + r.stdout());
    }

    /** Reads the image back and compares each chunk with the digest the index names. */
    static Outcome digests(Repository repo, DiskEntry disk, Path image) {
        IndexRoot root = repo.root(Digest.fromHex(disk.index()));
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            if (ch.size() != root.diskSize()) {
                return new Outcome(
                        DIGESTS, false, "the image has " + ch.size() + " bytes, the index " + root.diskSize());
            }
            byte[] buf = new byte[root.chunkSize()];
            long chunkNo = 0;
            for (Digest pageDigest : root.pages()) {
                IndexPage page = repo.page(pageDigest);
                for (int i = 0; i < page.size(); i++, chunkNo++) {
                    long offset = chunkNo * root.chunkSize();
                    int length = (int) Math.min(root.chunkSize(), root.diskSize() - offset);
                    ByteBuffer b = ByteBuffer.wrap(buf, 0, length);
                    while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
                        // read fully
                    }
                    Digest expected = page.get(i);
                    boolean ok;
                    if (!page.patch(i).isZero()) { // a patched chunk (ADR 15): its bytes, base and patch
                        ok = Arrays.equals(buf, 0, length, repo.chunk(page, i, length), 0, length);
                    } else {
                        ok = expected.isZero()
                                ? allZero(buf, length)
                                : Digest.sha256(buf, 0, length).equals(expected);
                    }
                    if (!ok) {
                        return new Outcome(
                                DIGESTS,
                                false,
                                "chunk " + chunkNo + " at offset " + offset + " differs from digest " + expected);
                    }
                }
            }
            return new Outcome(DIGESTS, true, root.chunkCount() + " chunks match the index");
        } catch (IOException e) {
            throw new PermanentException("cannot read " + image + ": " + e.getMessage(), e);
        }
    }

    private static boolean allZero(byte[] b, int length) {
        for (int i = 0; i < length; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    /** The binary on PATH, else in the sbin directories a non-root PATH often lacks. */
    private static String locate(String binary) {
        if (DrChecks.onPath(binary)) {
            return binary;
        }
        for (String dir : List.of("/usr/sbin", "/sbin")) {
            if (Files.isExecutable(Path.of(dir, binary))) {
                return dir + "/" + binary;
            }
        }
        throw new PermanentException(binary + " is not installed; install e2fsprogs (deploy/install-deps.sh)");
    }
}
