package io.tidemark.testkit.qemu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class DiskModelTest {

    @Test
    void writesPatternsAndZeroesAndCopiesAreIndependent() {
        DiskModel m = new DiskModel(1 << 20);
        String empty = m.sha256();
        m.write(4096, 100, 0xab);
        assertThat(m.read(4095, 102)).startsWith((byte) 0, (byte) 0xab).endsWith((byte) 0xab, (byte) 0);
        DiskModel snapshot = m.copy();
        m.writeZeroes(4096, 100);
        assertThat(m.sha256()).isEqualTo(empty);
        assertThat(snapshot.sha256()).isNotEqualTo(empty).isEqualTo(DiskModel.sha256(snapshot.bytes()));
    }

    @Test
    void rejectsRangesOutsideTheDisk() {
        DiskModel m = new DiskModel(4096);
        assertThatThrownBy(() -> m.write(4000, 100, 1)).isInstanceOf(IllegalArgumentException.class);
    }
}
