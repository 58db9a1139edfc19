package io.tidemark.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.CorruptObjectException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Packs of patches and the index pages that name them (ADR 26): golden files written by hand from
 * the layout in docs/design.md §3.2 parse forever and encode to the same bytes; a page whose
 * patches are in packs is version 3, which a reader of versions 1 and 2 refuses.
 */
class PatchPackFormatTest {

    @Test
    void goldenPackParsesForeverAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = ChunkPatchFormatTest.golden("pack-v1.bin");
        assertThat(PatchPack.isPack(golden)).isTrue();
        assertThat(PatchPack.isPack(ChunkPatchFormatTest.golden("patch-v1.bin")))
                .isFalse();
        PatchPack pack = PatchPack.parse("golden", golden);
        assertThat(pack.slots().keySet()).containsExactly(1, 3);
        assertThat(pack.slotBytes(1)).isEqualTo(64);
        assertThat(pack.slotBytes(3)).isEqualTo(70);
        assertThat(pack.bytes()).isEqualTo(134);

        ChunkPatch one = pack.slot("golden", 1);
        assertThat(one.base().isZero()).isTrue();
        byte[] chunk = one.applyTo(new byte[65536]);
        assertThat(new String(chunk, 8192, 8, StandardCharsets.US_ASCII)).isEqualTo("tidemark");
        ChunkPatch three = pack.slot("golden", 3);
        assertThat(three.base()).isEqualTo(ChunkPatchFormatTest.filled(0x33));
        assertThat(three.ranges()).containsExactly(new ChunkPatch.Range(0, 4), new ChunkPatch.Range(100, 2));
        assertThat(pack.toBytes()).isEqualTo(golden);
        assertThat(new PatchPack(Map.of(3, three, 1, one)).toBytes()).isEqualTo(golden);
    }

    @Test
    void anEntryWithoutItsSlotIsCorruptNamingThePack() throws IOException {
        PatchPack pack = PatchPack.parse("golden", ChunkPatchFormatTest.golden("pack-v1.bin"));
        assertThatThrownBy(() -> pack.slot("chunks/b1/b1b1", 2))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("chunks/b1/b1b1")
                .hasMessageContaining("no patch for index entry 2")
                .hasMessageContaining("tidemark verify");
    }

    @Test
    void aDamagedPackIsCorruptNotIgnored() throws IOException {
        byte[] golden = ChunkPatchFormatTest.golden("pack-v1.bin");
        assertThatThrownBy(() -> PatchPack.parse("k", Arrays.copyOf(golden, golden.length - 1)))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("does not match its slots");
        byte[] outOfOrder = golden.clone();
        outOfOrder[23] = 1; // the second slot's entry becomes 1, not after 1
        assertThatThrownBy(() -> PatchPack.parse("k", outOfOrder))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("out of order");
        byte[] future = golden.clone();
        future[4] = 2;
        assertThatThrownBy(() -> PatchPack.parse("k", future))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("pack version 2 unknown; upgrade Tidemark");
    }

    @Test
    void goldenPageWithPacksParsesForeverAndIsWrittenTheSameWay() throws IOException {
        byte[] golden = ChunkPatchFormatTest.golden("page-v3-packs.bin");
        IndexPage page = IndexPage.parse("golden", golden);
        assertThat(page.patchCount()).isEqualTo(3);
        assertThat(page.patchRef(0)).isEqualTo(PatchRef.NONE);
        assertThat(page.patchRef(1)).isEqualTo(new PatchRef(ChunkPatchFormatTest.filled(0xB1), 1));
        assertThat(page.patchRef(2)).isEqualTo(PatchRef.patch(ChunkPatchFormatTest.filled(0xA2)));
        assertThat(page.patchRef(3)).isEqualTo(new PatchRef(ChunkPatchFormatTest.filled(0xB1), 3));
        assertThat(page.get(1).isZero()).isTrue();
        assertThat(page.slotBytes(1)).isEqualTo(64);
        assertThat(page.slotBytes(3)).isEqualTo(70);
        assertThat(page.packBytes(ChunkPatchFormatTest.filled(0xB1))).isEqualTo(134);
        assertThat(page.toBytes()).isEqualTo(golden);

        IndexPage built = IndexPage.parse("golden", ChunkPatchFormatTest.golden("page-v1.bin"))
                .copy();
        built.setPacked(1, Digest.ZERO, ChunkPatchFormatTest.filled(0xB1), 64, 134);
        built.set(2, ChunkPatchFormatTest.filled(0x22), ChunkPatchFormatTest.filled(0xA2));
        built.setPacked(3, ChunkPatchFormatTest.filled(0x33), ChunkPatchFormatTest.filled(0xB1), 70, 134);
        assertThat(built.toBytes()).isEqualTo(golden);
    }

    @Test
    void aPageWithPacksIsVersionThreeSoAReaderOfPatchObjectsRefusesIt() throws IOException {
        // readers before ADR 26 accept versions 1 and 2 only
        assertThat(ChunkPatchFormatTest.golden("page-v3-packs.bin")[4]).isEqualTo((byte) 3);
        // once no entry names a pack, the page is version 2 again, as before packs
        IndexPage page = IndexPage.parse("golden", ChunkPatchFormatTest.golden("page-v3-packs.bin"));
        page.set(1, Digest.ZERO);
        page.set(3, ChunkPatchFormatTest.filled(0x33));
        assertThat(page.toBytes()[4]).isEqualTo((byte) 2);
        assertThat(page.packed(1)).isFalse();
    }

    @Test
    void aDamagedObjectTableIsCorruptNotIgnored() throws IOException {
        byte[] golden = ChunkPatchFormatTest.golden("page-v3-packs.bin");
        int objects = 12 + 4 * 32;
        byte[] badKind = golden.clone();
        badKind[objects + 4 + 32] = 7;
        assertThatThrownBy(() -> IndexPage.parse("k", badKind))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("object 0 is inconsistent");
        byte[] badOrdinal = golden.clone();
        badOrdinal[golden.length - 12 * 2 + 7] = 5; // entry 2 names object 5 of 2
        assertThatThrownBy(() -> IndexPage.parse("k", badOrdinal))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("entry 2 names a bad object or slot");
        byte[] slotsOverPack = golden.clone();
        slotsOverPack[objects + 4 + 32 + 7] = 100; // the pack's size drops below its slots' 134 bytes
        assertThatThrownBy(() -> IndexPage.parse("k", slotsOverPack))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("smaller than its slots");
        byte[] twice = golden.clone(); // the patch object listed with the pack's digest: one object, two kinds
        System.arraycopy(golden, objects + 4, twice, objects + 4 + 40, 32);
        assertThatThrownBy(() -> IndexPage.parse("k", twice))
                .isInstanceOf(CorruptObjectException.class)
                .hasMessageContaining("object 1 is inconsistent");
        byte[] shortTable = Arrays.copyOf(golden, golden.length - 1);
        assertThatThrownBy(() -> IndexPage.parse("k", shortTable)).isInstanceOf(CorruptObjectException.class);
    }
}
