package io.tidemark.repository.maintenance;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.format.ChunkPatch;
import io.tidemark.format.Digest;
import io.tidemark.format.PatchPack;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Verify holds a pack (ADR 26) to what each index page that names it records: the slot's base, the
 * slot's bytes and the pack's bytes (a writer decides repacks from the recorded sizes alone).
 */
class PackSlotCheckTest {

    private static final int CHUNK = 256 * 1024;
    private static final Digest BASE_A = Digest.sha256(new byte[] {1});
    private static final Digest BASE_B = Digest.sha256(new byte[] {2});

    private final PatchPack pack = new PatchPack(Map.of(
            3, ChunkPatch.of(BASE_A, CHUNK, Map.of(4096, new byte[4096])),
            7, ChunkPatch.of(BASE_B, CHUNK, Map.of(0, new byte[8192]))));

    private References.PackSlot recorded(int entry, Digest base) {
        return new References.PackSlot("pages/ab/abcd", entry, base, pack.slotBytes(entry), pack.bytes());
    }

    @Test
    void aSlotAsItsPageRecordsItPasses() {
        assertThat(Verifier.packSlotProblem(pack, recorded(3, BASE_A))).isEmpty();
        assertThat(Verifier.packSlotProblem(pack, recorded(7, BASE_B))).isEmpty();
    }

    @Test
    void aMissingSlotOrAnotherBaseIsReportedWithThePageAndEntry() {
        assertThat(Verifier.packSlotProblem(
                        pack, new References.PackSlot("pages/ab/abcd", 5, BASE_A, 10, pack.bytes())))
                .hasValueSatisfying(m -> assertThat(m)
                        .contains("pack has no patch for an index entry that names it")
                        .contains("index page pages/ab/abcd, entry 5"));
        assertThat(Verifier.packSlotProblem(pack, recorded(7, BASE_A))).hasValueSatisfying(m -> assertThat(m)
                .contains("pack slot is for base " + BASE_B + ", its index page names " + BASE_A)
                .contains("entry 7"));
    }

    @Test
    void recordedSlotOrPackBytesThatDifferFromThePackAreReported() {
        References.PackSlot right = recorded(3, BASE_A);
        References.PackSlot slotBytes =
                new References.PackSlot(right.pageKey(), 3, BASE_A, right.slotBytes() + 1, right.packBytes());
        assertThat(Verifier.packSlotProblem(pack, slotBytes)).hasValueSatisfying(m -> assertThat(m)
                .contains("pack slot holds " + pack.slotBytes(3) + " bytes, its index page records "
                        + (pack.slotBytes(3) + 1)));
        References.PackSlot packBytes =
                new References.PackSlot(right.pageKey(), 3, BASE_A, right.slotBytes(), right.packBytes() - 1);
        assertThat(Verifier.packSlotProblem(pack, packBytes)).hasValueSatisfying(m -> assertThat(m)
                .contains(
                        "pack's slots hold " + pack.bytes() + " bytes, its index page records " + (pack.bytes() - 1)));
    }
}
