package io.tidemark.demo.bench;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * The second bench data set (issue 15), which the pipeline was not designed on: a disk image of
 * compressible text, incompressible data and zeros in runs, and a database-like change of one
 * sequential run plus thousands of scattered 4 KiB writes. Both are deterministic from their
 * seeds.
 *
 * <p>Image: each 1 MiB block is, from {@code new Random(seed)}, with p = 0.47 log-like text
 * (timestamped lines of a small vocabulary; zstd -1 shrinks it about 4×), with p = 0.47 random
 * bytes ({@link Random#nextBytes}, incompressible), else the start of a run of 1–16 MiB of zeros
 * (written explicitly, no holes): about a third of the image each.
 *
 * <p>Change of {@code fraction} of the image: a quarter of it as one sequential run (4 KiB
 * aligned, half text and half random), three quarters as distinct 4 KiB-aligned 4 KiB writes
 * spread over the whole image, each text or random with p = ½.
 */
final class MixedImage {

    static final int MIB = 1 << 20;
    static final int K4 = 4096;

    private static final String[] LEVELS = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};
    private static final String[] WORDS = {
        "request", "served", "GET", "POST", "/api/v1/orders", "/api/v1/users", "cache", "miss", "hit", "commit",
        "rollback", "txn", "user", "session", "opened", "closed", "checkpoint", "flushed", "pages", "rows"
    };

    private MixedImage() {}

    /** Writes the image ({@code size} a multiple of 1 MiB); returns its text, random and zero MiB. */
    static long[] generate(Path file, long size, long seed) throws IOException {
        if (size <= 0 || size % MIB != 0) {
            throw new PermanentException("a test image size must be a positive multiple of 1 MiB, not " + size);
        }
        Random kinds = new Random(seed);
        Random content = new Random(seed + 1);
        byte[] block = new byte[MIB];
        long[] mib = new long[3];
        long clock = 1_796_000_000_000L;
        try (FileChannel ch = FileChannel.open(
                file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            long blocks = size / MIB;
            long zeroRun = 0;
            for (long i = 0; i < blocks; i++) {
                if (zeroRun > 0) {
                    zeroRun--;
                    Arrays.fill(block, (byte) 0);
                    mib[2]++;
                } else {
                    double k = kinds.nextDouble();
                    if (k < 0.47) {
                        clock = text(block, 0, MIB, content, clock);
                        mib[0]++;
                    } else if (k < 0.94) {
                        content.nextBytes(block);
                        mib[1]++;
                    } else {
                        zeroRun = kinds.nextInt(16); // this block and up to 15 more
                        Arrays.fill(block, (byte) 0);
                        mib[2]++;
                    }
                }
                ByteBuffer b = ByteBuffer.wrap(block);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            ch.force(true);
        }
        return mib;
    }

    /** Fills {@code out[from, from+length)} with log lines; returns the clock after them. */
    static long text(byte[] out, int from, int length, Random r, long clock) {
        int at = from;
        int end = from + length;
        StringBuilder line = new StringBuilder(160);
        while (at < end) {
            clock += r.nextInt(50);
            line.setLength(0);
            line.append(java.time.Instant.ofEpochMilli(clock))
                    .append(' ')
                    .append(LEVELS[r.nextInt(LEVELS.length)])
                    .append(" [worker-")
                    .append(r.nextInt(16))
                    .append("] ");
            int words = 3 + r.nextInt(6);
            for (int w = 0; w < words; w++) {
                line.append(WORDS[r.nextInt(WORDS.length)]).append(' ');
            }
            line.append("id=")
                    .append(Long.toHexString(r.nextLong() & 0xffffffffL))
                    .append(" took ")
                    .append(r.nextInt(900))
                    .append(" ms\n");
            byte[] b = line.toString().getBytes(StandardCharsets.US_ASCII);
            int n = Math.min(b.length, end - at);
            System.arraycopy(b, 0, out, at, n);
            at += n;
        }
        return clock;
    }

    /** The change: its writes (disk order), and the bytes they cover. */
    record Change(List<TestImage.Change> writes, long changedBytes, int scatteredWrites, long runBytes) {}

    /** The database-like change of {@code fraction} of an image of {@code size} bytes. */
    static Change change(long size, double fraction, long seed) {
        Random r = new Random(seed);
        long budget = Math.max(2L * K4, (long) (size * fraction));
        long runBytes = Math.max(K4, budget / 4 / K4 * K4);
        long runStart = (long) (r.nextDouble() * ((size - runBytes) / K4)) * K4;
        int scattered = (int) Math.max(1, (budget - runBytes) / K4);
        long pages = size / K4;
        Set<Long> picked = new LinkedHashSet<>();
        long runFirst = runStart / K4;
        long runLast = (runStart + runBytes) / K4;
        while (picked.size() < scattered) {
            long p = (long) (r.nextDouble() * pages);
            if (p < runFirst || p >= runLast) {
                picked.add(p);
            }
        }
        List<TestImage.Change> writes = new ArrayList<>(scattered + 1);
        long clock = 1_797_000_000_000L;
        byte[] run = new byte[Math.toIntExact(runBytes)];
        int half = run.length / 2 / K4 * K4;
        clock = text(run, 0, half, r, clock);
        byte[] rnd = new byte[run.length - half];
        r.nextBytes(rnd);
        System.arraycopy(rnd, 0, run, half, rnd.length);
        writes.add(new TestImage.Change(runStart, run));
        for (long p : picked) {
            byte[] data = new byte[K4];
            if (r.nextBoolean()) {
                clock = text(data, 0, K4, r, clock);
            } else {
                r.nextBytes(data);
            }
            writes.add(new TestImage.Change(p * K4, data));
        }
        writes.sort((a, b) -> Long.compare(a.offset(), b.offset()));
        return new Change(writes, runBytes + (long) scattered * K4, scattered, runBytes);
    }
}
