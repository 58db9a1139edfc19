package io.tidemark.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

class InMemoryInventoryTest {
    @Test
    void locatesAndListsInNameOrderAndFollowsMoves() {
        InMemoryInventory inventory = new InMemoryInventory()
                .put("b", "host-1", Map.of("tier", "web"))
                .put("a", "host-2", Map.of());
        assertThat(inventory.all()).extracting(VmPlacement::vm).containsExactly("a", "b");
        assertThat(inventory.locate("b")).contains(new Placement("host-1", Map.of("tier", "web")));

        inventory.put("b", "host-3", Map.of("tier", "web")); // live migration
        assertThat(inventory.locate("b").orElseThrow().host()).isEqualTo("host-3");

        assertThat(inventory.remove("a")).isTrue();
        assertThat(inventory.remove("a")).isFalse();
        assertThat(inventory.locate("a")).isEmpty();
    }
}
