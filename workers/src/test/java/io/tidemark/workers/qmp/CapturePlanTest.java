package io.tidemark.workers.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.event.FullReason;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CapturePlanTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Shaped like QEMU 7.2's query-block, trimmed. */
    private static List<BlockDevice> devices(String bitmapsOfSd0) throws IOException {
        String json =
                """
                [{"device":"","qdev":"sd0","type":"unknown","inserted":{"node-name":"sd0-fmt","drv":"qcow2",
                   "image":{"virtual-size":33554432,"format-specific":{"type":"qcow2","data":{"compat":"1.1"}}},
                   "dirty-bitmaps":%s}},
                 {"device":"","qdev":"/machine/peripheral/vd1/virtio-backend","inserted":{"node-name":"vd1-fmt",
                   "drv":"qcow2","image":{"virtual-size":16777216,
                   "format-specific":{"type":"qcow2","data":{"compat":"0.10"}}}}},
                 {"device":"cd0","qdev":"cd0","type":"unknown"},
                 {"device":"","qdev":"raw0","inserted":{"node-name":"raw0-fmt","drv":"raw",
                   "image":{"virtual-size":1048576},"dirty-bitmaps":[]}}]
                """
                        .formatted(bitmapsOfSd0);
        return BlockDevice.parse(JSON.readTree(json));
    }

    private static String bitmap(String name, boolean recording, boolean persistent, boolean inconsistent) {
        return "{" + (name == null ? "" : "\"name\":\"" + name + "\",") + "\"recording\":" + recording
                + ",\"persistent\":" + persistent + (inconsistent ? ",\"inconsistent\":true" : "")
                + ",\"busy\":false,\"granularity\":65536,\"count\":0}";
    }

    @Test
    void parsesDisksWithMediumAndQdevOnly() throws IOException {
        List<BlockDevice> d = devices("[" + bitmap(null, false, false, false) + "]");
        assertThat(d).extracting(BlockDevice::disk).containsExactly("sd0", "vd1", "raw0");
        assertThat(d.get(0).info().node()).isEqualTo("sd0-fmt");
        assertThat(d.get(0).info().sizeBytes()).isEqualTo(33554432);
        assertThat(d.get(0).bitmaps()).singleElement().satisfies(b -> assertThat(b.name())
                .isEmpty());
        assertThat(d).extracting(BlockDevice::canPersistBitmaps).containsExactly(true, false, false);
    }

    @Test
    void usableCheckpointMeansIncremental() throws IOException {
        BlockDevice sd0 = devices(
                        "[" + bitmap("tm-1", true, true, false) + "," + bitmap(null, false, false, false) + "]")
                .get(0);
        CapturePlan.Disk p = CapturePlan.plan(sd0, Optional.of("tm-1"));
        assertThat(p.incremental()).isTrue();
        assertThat(p.persistent()).isTrue();
    }

    @Test
    void fullReasons() throws IOException {
        BlockDevice fresh = devices("[]").get(0);
        assertThat(CapturePlan.plan(fresh, Optional.empty()).fullReason()).hasValueSatisfying(r -> {
            assertThat(r.kind()).isEqualTo(FullReason.Kind.FIRST_BACKUP);
            assertThat(r.detail()).contains("first backup");
        });
        assertThat(CapturePlan.plan(fresh, Optional.of("tm-1")).fullReason()).hasValueSatisfying(r -> {
            assertThat(r.kind()).isEqualTo(FullReason.Kind.CHECKPOINT_MISSING);
            assertThat(r.detail()).contains("checkpoint tm-1 missing");
        });
        BlockDevice crashed =
                devices("[" + bitmap("tm-1", false, true, true) + "]").get(0);
        assertThat(CapturePlan.plan(crashed, Optional.of("tm-1")).fullReason())
                .hasValue(FullReason.of(
                        FullReason.Kind.CHECKPOINT_INCONSISTENT,
                        "checkpoint tm-1 inconsistent (QEMU was not shut down cleanly)"));
        BlockDevice disabled =
                devices("[" + bitmap("tm-1", false, true, false) + "]").get(0);
        assertThat(CapturePlan.plan(disabled, Optional.of("tm-1")).fullReason()).hasValueSatisfying(r -> {
            assertThat(r.kind()).isEqualTo(FullReason.Kind.CHECKPOINT_DISABLED);
            assertThat(r.detail()).contains("disabled");
        });
    }

    @Test
    void nodesThatCannotPersistBitmapsAreIncrementalWhileTheirQemuRunsAndSayWhyAfterARestart() throws IOException {
        BlockDevice v2 = devices("[]").get(1);
        CapturePlan.Disk first = CapturePlan.plan(v2, Optional.empty());
        assertThat(first.persistent()).isFalse();
        assertThat(CapturePlan.plan(v2, Optional.of("tm-1")).fullReason()).hasValueSatisfying(r -> {
            assertThat(r.kind()).isEqualTo(FullReason.Kind.CHECKPOINT_MISSING);
            assertThat(r.detail()).contains("qcow2 v2", "cannot store persistent bitmaps");
        });
        BlockDevice raw = devices("[]").get(2);
        BlockDevice rawWithBitmap = new BlockDevice(
                raw.disk(),
                raw.node(),
                raw.sizeBytes(),
                raw.driver(),
                false,
                "raw",
                List.of(new BlockDevice.Bitmap(Optional.of("tm-1"), true, false, false, false)),
                Optional.empty());
        // the bitmap exists, so the QEMU that started it at the parent's instant still runs: trusted
        CapturePlan.Disk whileRunning = CapturePlan.plan(rawWithBitmap, Optional.of("tm-1"));
        assertThat(whileRunning.fullReason()).isEmpty();
        assertThat(whileRunning.persistent()).isFalse();
    }

    @Test
    void aBusyCheckpointIsRetriable() {
        BlockDevice busy = new BlockDevice(
                "sd0",
                "n",
                1,
                "qcow2",
                true,
                "qcow2",
                List.of(new BlockDevice.Bitmap(Optional.of("tm-1"), false, true, false, true)),
                Optional.empty());
        assertThatThrownBy(() -> CapturePlan.plan(busy, Optional.of("tm-1"))).isInstanceOf(RetriableException.class);
    }

    @Test
    void repairRemovesOurStaleBitmapsButNotForeignOnes() throws IOException {
        List<BlockDevice> d = devices("[" + bitmap("tm-1", true, true, false) + "," + bitmap("tm-0", false, true, false)
                + "," + bitmap("libvirt-ckpt", true, true, false) + "," + bitmap(null, true, false, false) + "]");
        List<ObjectNode> actions = CapturePlan.repairActions(d, Optional.of("tm-1"), "tm-2", "tm-");
        assertThat(actions).hasSize(1);
        assertThat(actions.get(0).path("type").asText()).isEqualTo("block-dirty-bitmap-remove");
        assertThat(actions.get(0).path("data").path("name").asText()).isEqualTo("tm-0");
    }

    @Test
    void repairMergesWhatAnInterruptedCaptureRecordedBackIntoTheDisabledCheckpoint() throws IOException {
        // crash after the capture transaction: tm-1 disabled, tm-2 recording
        List<BlockDevice> d =
                devices("[" + bitmap("tm-1", false, true, false) + "," + bitmap("tm-2", true, true, false) + "]");
        List<ObjectNode> actions = CapturePlan.repairActions(d, Optional.of("tm-1"), "tm-3", "tm-");
        assertThat(actions)
                .extracting(a -> a.path("type").asText())
                .containsExactly("block-dirty-bitmap-merge", "block-dirty-bitmap-enable", "block-dirty-bitmap-remove");
        JsonNode merge = actions.get(0).path("data");
        assertThat(merge.path("target").asText()).isEqualTo("tm-1");
        assertThat(merge.path("bitmaps").get(0).asText()).isEqualTo("tm-2");
        // the same job retried with the same new name: tm-2 is a leftover too
        assertThat(CapturePlan.repairActions(d, Optional.of("tm-1"), "tm-2", "tm-"))
                .hasSize(3);
    }

    @Test
    void repairAfterCrashBeforeTheOldCheckpointWasDroppedJustRemovesIt() throws IOException {
        // the restore point was committed, commit() never ran: tm-1 disabled leftover, tm-2 is the parent
        List<BlockDevice> d =
                devices("[" + bitmap("tm-1", false, true, false) + "," + bitmap("tm-2", true, true, false) + "]");
        List<ObjectNode> actions = CapturePlan.repairActions(d, Optional.of("tm-2"), "tm-3", "tm-");
        assertThat(actions).extracting(a -> a.path("type").asText()).containsExactly("block-dirty-bitmap-remove");
        assertThat(actions.get(0).path("data").path("name").asText()).isEqualTo("tm-1");
    }

    @Test
    void diskNames() {
        assertThat(BlockDevice.diskName("vm-sd")).isEqualTo("vm-sd");
        assertThat(BlockDevice.diskName("/machine/peripheral/vd0/virtio-backend"))
                .isEqualTo("vd0");
        assertThat(BlockDevice.diskName("/machine/peripheral-anon/device[0]")).isEqualTo("device[0]");
    }
}
