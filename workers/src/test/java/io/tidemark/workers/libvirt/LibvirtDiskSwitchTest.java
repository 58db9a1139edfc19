package io.tidemark.workers.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LibvirtDiskSwitchTest {

    private static final String DOMAIN =
            """
            <domain type='qemu'><name>shop</name><devices>
              <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/srv/shop-vda.raw'/>
                <backingStore/><target dev='vda' bus='virtio'/><serial>S1</serial></disk>
              <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/srv/shop-sda.qcow2'/>
                <target dev='sda' bus='scsi'/></disk>
            </devices></domain>
            """;

    @Test
    void onlyTheNamedDisksReadTheirNewImages() {
        String xml = LibvirtDiskSwitch.withImages(DOMAIN, Map.of("vda", Path.of("/srv/shop-vda.rollback-p1.qcow2")));

        assertThat(xml)
                .contains("<source file=\"/srv/shop-vda.rollback-p1.qcow2\"/>")
                .doesNotContain("/srv/shop-vda.raw")
                .doesNotContain("<backingStore")
                .contains("<serial>S1</serial>")
                .contains("/srv/shop-sda.qcow2");
        assertThat(xml.indexOf("type=\"qcow2\"")).isLessThan(xml.indexOf("shop-vda.rollback"));
    }

    @Test
    void aDiskTheDomainLacksSwitchesNothing() {
        assertThatThrownBy(() -> LibvirtDiskSwitch.withImages(DOMAIN, Map.of("vdz", Path.of("/x.qcow2"))))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("nothing was switched");
    }
}
