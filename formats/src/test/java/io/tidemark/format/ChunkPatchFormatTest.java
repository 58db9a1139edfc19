package io.tidemark.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * Index pages with patches and chunk patches (ADR 15): golden files written from the layout in
 * docs/design.md §3.2 parse forever and encode to the same bytes; a page without patches stays
 * version 1 byte for byte, so points written before patches read as they did and a reader that
 * predates patches refuses a page that has them.
 */
class ChunkPatchFormatTest {

    static byte[] golden(String name) throws IOException {
        try (InputStream in = ChunkPatchFormatTest.class.getResourceAsStream("/golden/" + name)) {
            return in.readAllBytes();
        }
    }

    static Digest filled(int b) {
        byte[] d = new byte[32];
        Arrays.fill(d, (byte) b);
        return Digest.of(d);
    }

    @Test
    void aPageWithoutPatchesIsVersionOneByteForByte() throws IOException {
        byte[] golden = golden("page-v1.bin");
        IndexPage page = IndexPage.parse("golden", golden);
        assertThat(page.size()).isEqualTo(4);
        assertThat(page.get(0)).isEqualTo(filled(0x11));
        assertThat(page.get(1).isZero()).isTrue();
        assertThat(page.patchCount()).isZero();
        assertThat(page.patch(3).isZero()).isTrue();
        assertThat(page.toBytes()).isEqualTo(golden);

        // a patch set and cleared again leaves a version 1 page
        IndexPage copy = page.copy();
        copy.set(3, filled(0x33), filled(0xA3));
        copy.set(3, filled(0x33));
        assertThat(copy.toBytes()).isEqualTo(golden);
    }

    @Test
    void goldenPageWithPatchesParsesForeverAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = golden("page-v2-patches.bin");
        IndexPage page = IndexPage.parse("golden", golden);
        assertThat(page.patchCount()).isEqualTo(2);
        assertThat(page.get(1).isZero()).as("a patch on a zero base").isTrue();
        assertThat(page.patch(1)).isEqualTo(filled(0xA1));
        assertThat(page.get(3)).isEqualTo(filled(0x33));
        assertThat(page.patch(3)).isEqualTo(filled(0xA3));
        assertThat(page.patch(0).isZero()).isTrue();
        assertThat(page.toBytes()).isEqualTo(golden);

        IndexPage built = IndexPage.parse("golden", golden("page-v1.bin")).copy();
        built.set(1, Digest.ZERO, filled(0xA1));
        built.set(3, filled(0x33), filled(0xA3));
        assertThat(built.toBytes()).isEqualTo(golden);
    }

    @Test
    void aPageWithPatchesIsNotVersionOneSoAnOlderReaderRefusesIt() throws IOException {
        // the reader of version 1 (main before ADR 15) accepts exactly version byte 1
        assertThat(golden("page-v2-patches.bin")[4]).isEqualTo((byte) 2);
        byte[] future = golden("page-v2-patches.bin");
        future[4] = 4; // 3 is packs (ADR 26)
        assertThatThrownBy(() -> IndexPage.parse("pages/ab/abc", future))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("index page version 4 unknown; upgrade Tidemark");
    }

    @Test
    void aDamagedPatchTableIsCorruptNotIgnored() throws IOException {
        byte[] golden = golden("page-v2-patches.bin");
        byte[] shortTable = Arrays.copyOf(golden, golden.length - 1);
        assertThatThrownBy(() -> IndexPage.parse("k", shortTable)).isInstanceOf(CorruptObjectException.class);
        byte[] outOfOrder = golden.clone();
        outOfOrder[golden.length - 36 + 3] = 1; // the second entry's index becomes 1, not after 1
        assertThatThrownBy(() -> IndexPage.parse("k", outOfOrder))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("out of order");
    }

    @Test
    void goldenPatchParsesForeverAppliesAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = golden("patch-v1.bin");
        ChunkPatch p = ChunkPatch.parse("golden", golden);
        assertThat(p.base()).isEqualTo(filled(0x33));
        assertThat(p.chunkLength()).isEqualTo(65536);
        assertThat(p.ranges()).containsExactly(new ChunkPatch.Range(4096, 4096), new ChunkPatch.Range(16384, 8));
        assertThat(p.dataBytes()).isEqualTo(4104);
        assertThat(p.toBytes()).isEqualTo(golden);

        byte[] chunk = new byte[65536];
        Arrays.fill(chunk, (byte) 1);
        p.applyTo(chunk);
        assertThat(chunk[4095]).isEqualTo((byte) 1);
        assertThat(chunk[4096]).isEqualTo((byte) 0x5a);
        assertThat(chunk[8191]).isEqualTo((byte) 0x5a);
        assertThat(chunk[8192]).isEqualTo((byte) 1);
        assertThat(new String(chunk, 16384, 8, java.nio.charset.StandardCharsets.US_ASCII))
                .isEqualTo("tidemark");
    }

    @Test
    void aLaterChangeMergesIntoOnePatchOnTheSameBaseAndTheNewBytesWin() {
        Map<Integer, byte[]> first = new TreeMap<>(Map.of(0, fill(4, 1), 16, fill(4, 2)));
        ChunkPatch p1 = ChunkPatch.of(filled(7), 64, first);
        assertThat(p1.ranges()).containsExactly(new ChunkPatch.Range(0, 4), new ChunkPatch.Range(16, 4));

        ChunkPatch p2 = p1.with(new TreeMap<>(Map.of(2, fill(4, 3), 40, fill(8, 4))));
        assertThat(p2.base()).isEqualTo(filled(7));
        assertThat(p2.ranges())
                .containsExactly(new ChunkPatch.Range(0, 6), new ChunkPatch.Range(16, 4), new ChunkPatch.Range(40, 8));
        byte[] chunk = p2.applyTo(new byte[64]);
        assertThat(Arrays.copyOfRange(chunk, 0, 6)).containsExactly(1, 1, 3, 3, 3, 3);
        assertThat(Arrays.copyOfRange(chunk, 16, 20)).containsExactly(2, 2, 2, 2);
        assertThat(chunk[40]).isEqualTo((byte) 4);
        assertThat(ChunkPatch.parse("k", p2.toBytes()).ranges()).isEqualTo(p2.ranges());
    }

    @Test
    void mergedPatchesEqualWritingEveryChangeInOrderOverTheBase() {
        java.util.Random r = new java.util.Random(15);
        for (int trial = 0; trial < 300; trial++) {
            int length = 4096;
            byte[] base = new byte[length];
            r.nextBytes(base);
            byte[] expected = base.clone();
            ChunkPatch patch = null;
            for (int round = 0; round < 1 + r.nextInt(4); round++) {
                Map<Integer, byte[]> changed = new TreeMap<>();
                int at = r.nextInt(64);
                while (at < length - 1 && changed.size() < 6) { // disjoint within one round, as reads are
                    int n = 1 + r.nextInt(Math.min(300, length - at));
                    byte[] b = new byte[n];
                    r.nextBytes(b);
                    changed.put(at, b);
                    at += n + r.nextInt(400);
                }
                for (var e : changed.entrySet()) {
                    System.arraycopy(e.getValue(), 0, expected, e.getKey(), e.getValue().length);
                }
                patch = patch == null ? ChunkPatch.of(filled(1), length, changed) : patch.with(changed);
            }
            assertThat(patch.applyTo(base.clone())).as("trial %d", trial).isEqualTo(expected);
            assertThat(ChunkPatch.parse("k", patch.toBytes()).applyTo(base.clone()))
                    .isEqualTo(expected);
        }
    }

    @Test
    void aPatchWhoseDataDoesNotMatchItsRangesIsCorrupt() throws IOException {
        byte[] golden = golden("patch-v1.bin");
        assertThatThrownBy(() -> ChunkPatch.parse("chunks/ab/abc", Arrays.copyOf(golden, golden.length - 1)))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("chunks/ab/abc");
        assertThatThrownBy(() -> new ChunkPatch(
                        filled(1), 64, List.of(new ChunkPatch.Range(8, 8), new ChunkPatch.Range(16, 8)), new byte[16]))
                .as("touching ranges must be merged")
                .isInstanceOf(IllegalArgumentException.class);
    }

    private static byte[] fill(int n, int b) {
        byte[] out = new byte[n];
        Arrays.fill(out, (byte) b);
        return out;
    }
}
