package io.tidemark.workers.qmp;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.tidemark.workers.rbd.RbdDisk;
import io.tidemark.workers.rbd.RbdImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Which disks are on RBD, from QEMU 7.2's query-block (the filenames as QEMU printed them, ADR 18). */
class BlockDeviceRbdTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void anRbdNodeAndARawNodeOverRbdNameTheirImageConfAndUser() throws IOException {
        String json =
                """
                [{"device":"","qdev":"/machine/peripheral/vda/virtio-backend","inserted":{"node-name":"rbd0",
                   "drv":"rbd","image":{"virtual-size":16777216,"format":"rbd","filename":
                   "json:{\\"pool\\": \\"rbdp\\", \\"image\\": \\"vm1\\", \\"conf\\": \\"/tmp/c/ceph.conf\\", \\"driver\\": \\"rbd\\", \\"user\\": \\"admin\\"}"}}},
                 {"device":"d2","qdev":"/machine/peripheral/vdb/virtio-backend","inserted":{"node-name":"fmt2",
                   "drv":"raw","image":{"virtual-size":8589934592,"format":"raw","filename":
                   "json:{\\"driver\\": \\"raw\\", \\"file\\": {\\"pool\\": \\"rbdp\\", \\"image\\": \\"big\\", \\"conf\\": \\"/tmp/c/ceph.conf\\", \\"driver\\": \\"rbd\\", \\"namespace\\": \\"\\"}}"}}},
                 {"device":"","qdev":"sd0","inserted":{"node-name":"sd0-fmt","drv":"qcow2",
                   "image":{"virtual-size":1048576,"filename":"/var/lib/vm/sd0.qcow2"}}},
                 {"device":"","qdev":"nbd0","inserted":{"node-name":"nbd0","drv":"raw",
                   "image":{"virtual-size":1048576,"filename":"json:{\\"driver\\": \\"raw\\", \\"file\\": {\\"driver\\": \\"nbd\\"}}"}}}]
                """;

        List<BlockDevice> d = BlockDevice.parse(JSON.readTree(json));

        assertThat(d.get(0).rbd())
                .contains(new RbdDisk(
                        RbdImage.of("rbdp", "vm1"), Optional.of(Path.of("/tmp/c/ceph.conf")), Optional.of("admin")));
        assertThat(d.get(1).rbd())
                .contains(new RbdDisk(
                        RbdImage.of("rbdp", "big"), Optional.of(Path.of("/tmp/c/ceph.conf")), Optional.empty()));
        assertThat(d.get(2).rbd()).isEmpty();
        assertThat(d.get(3).rbd()).isEmpty();
        assertThat(d.get(0).canPersistBitmaps()).isFalse();
    }

    @Test
    void aNamespaceIsPartOfTheImageSpec() {
        assertThat(RbdDisk.fromQemuFilename(
                                "json:{\"driver\": \"rbd\", \"pool\": \"p\", \"namespace\": \"ns\", \"image\": \"i\"}")
                        .orElseThrow()
                        .image()
                        .spec("tm-1"))
                .isEqualTo("p/ns/i@tm-1");
        assertThat(RbdDisk.fromQemuFilename("rbd-looking-file.raw")).isEmpty();
        assertThat(RbdDisk.fromQemuFilename("json:{not json")).isEmpty();
    }
}
