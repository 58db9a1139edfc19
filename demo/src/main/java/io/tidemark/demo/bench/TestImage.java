package io.tidemark.demo.bench;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import javax.crypto.Cipher;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The deterministic test image of recipes/bench-faults.md §1, generated in Java: each 1 MiB block
 * is, with probability ½ ({@code new Random(42)}), an AES-128-CTR keystream block with a fixed key
 * (incompressible), else zeros written explicitly (no holes). A prefix of a larger image equals the
 * smaller image. Changes are 64 KiB blocks of random bytes at distinct aligned offsets.
 */
final class TestImage {

    static final int MIB = 1 << 20;
    static final int K64 = 64 << 10;

    /** One changed block. */
    record Change(long offset, byte[] data) {}

    private TestImage() {}

    /** Writes the raw image of {@code size} bytes (a multiple of 1 MiB); returns its random MiB count. */
    static long generate(Path file, long size) throws IOException {
        if (size <= 0 || size % MIB != 0) {
            throw new PermanentException("a test image size must be a positive multiple of 1 MiB, not " + size);
        }
        Cipher ctr;
        try {
            ctr = Cipher.getInstance("AES/CTR/NoPadding");
            ctr.init(
                    Cipher.ENCRYPT_MODE,
                    new SecretKeySpec(HexFormat.of().parseHex("00112233445566778899aabbccddeeff"), "AES"),
                    new IvParameterSpec(new byte[16]));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no AES/CTR", e);
        }
        Random kinds = new Random(42);
        byte[] zero = new byte[MIB];
        byte[] random = new byte[MIB];
        long randomMiB = 0;
        try (FileChannel ch = FileChannel.open(
                file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            for (long i = 0; i < size / MIB; i++) {
                byte[] block = zero;
                if (kinds.nextDouble() < 0.5) {
                    ctr.update(zero, 0, MIB, random, 0);
                    block = random;
                    randomMiB++;
                }
                ByteBuffer b = ByteBuffer.wrap(block);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            ch.force(true);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/CTR failed", e);
        }
        return randomMiB;
    }

    /**
     * Copies the chunks of {@code chunkSize} bytes of {@code raw} that are not all zeros to {@code
     * out} (the bytes a backup hashes and compresses); returns how many bytes it wrote.
     */
    static long nonZeroChunks(Path raw, Path out, int chunkSize) throws IOException {
        byte[] zero = new byte[chunkSize];
        long written = 0;
        try (FileChannel in = FileChannel.open(raw, StandardOpenOption.READ);
                FileChannel to = FileChannel.open(
                        out,
                        StandardOpenOption.CREATE,
                        StandardOpenOption.TRUNCATE_EXISTING,
                        StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(chunkSize);
            for (long off = 0; ; off += chunkSize) {
                b.clear();
                while (b.hasRemaining() && in.read(b, off + b.position()) > 0) {
                    // read on
                }
                if (b.position() == 0) {
                    return written;
                }
                int n = b.position();
                if (java.util.Arrays.mismatch(b.array(), 0, n, zero, 0, n) >= 0) {
                    b.flip();
                    while (b.hasRemaining()) {
                        written += to.write(b);
                    }
                }
            }
        }
    }

    /** {@code fraction} of {@code size} as distinct 64 KiB-aligned blocks of random bytes, from {@code seed}. */
    static List<Change> changes(long size, double fraction, long seed) {
        long blocks = size / K64;
        int n = (int) Math.max(1, Math.min(blocks, (long) Math.ceil(size * fraction / K64)));
        Random rng = new Random(seed);
        Set<Long> picked = new LinkedHashSet<>();
        while (picked.size() < n) {
            picked.add((long) (rng.nextDouble() * blocks));
        }
        List<Change> out = new ArrayList<>(n);
        for (long b : picked.stream().sorted().toList()) {
            byte[] data = new byte[K64];
            rng.nextBytes(data);
            out.add(new Change(b * K64, data));
        }
        return out;
    }

    /** Applies the changes to a raw file, then fsyncs it. */
    static void applyRaw(Path raw, List<Change> changes) throws IOException {
        try (FileChannel ch = FileChannel.open(raw, StandardOpenOption.WRITE)) {
            for (Change c : changes) {
                ByteBuffer b = ByteBuffer.wrap(c.data());
                long at = c.offset();
                while (b.hasRemaining()) {
                    at += ch.write(b, at);
                }
            }
            ch.force(true);
        }
    }

    /**
     * Applies the changes to a qcow2 image through QEMU's block layer ({@code qemu-io}), so that its
     * enabled persistent dirty bitmaps record them as a guest's writes would be.
     */
    static void applyQcow2(Path image, List<Change> changes, Path scratch) throws IOException {
        Files.createDirectories(scratch);
        int batch = 256;
        for (int from = 0; from < changes.size(); from += batch) {
            List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2", image.toString()));
            List<Path> sources = new ArrayList<>();
            for (int i = from; i < Math.min(changes.size(), from + batch); i++) {
                Change c = changes.get(i);
                Path src = scratch.resolve("change-" + i);
                Files.write(src, c.data());
                sources.add(src);
                cmd.add("-c");
                cmd.add("write -q -s " + src + " " + c.offset() + " " + c.data().length);
            }
            Tools.run(List.copyOf(cmd), java.util.Map.of(), 600);
            for (Path s : sources) {
                Files.delete(s);
            }
        }
    }
}
