package io.tidemark.workers.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.tidemark.core.PermanentException;
import io.tidemark.workers.rbd.RbdDisk;
import io.tidemark.workers.rbd.RbdImage;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What the adapter reads from libvirt 9.0's XML (samples shaped like virsh dumpxml output). */
class DomainXmlTest {

    @Test
    void guestDisksInOrderWithoutCdromsWithFormatSourceAndIndex() {
        String xml =
                """
                <domain type='qemu' id='3'>
                  <name>web-1</name>
                  <devices>
                    <emulator>/usr/bin/qemu-system-x86_64</emulator>
                    <disk type='file' device='disk'>
                      <driver name='qemu' type='qcow2'/>
                      <source file='/var/lib/vms/web-1.qcow2' index='2'/>
                      <backingStore/>
                      <target dev='vda' bus='virtio'/>
                      <alias name='virtio-disk0'/>
                    </disk>
                    <disk type='file' device='cdrom'>
                      <driver name='qemu' type='raw'/>
                      <target dev='sdc' bus='sata'/>
                    </disk>
                    <disk type='block' device='disk'>
                      <driver name='qemu' type='raw'/>
                      <source dev='/dev/vg0/data' index='1'/>
                      <target dev='sda' bus='scsi'/>
                    </disk>
                    <interface type='network'><target dev='vnet0'/></interface>
                  </devices>
                </domain>
                """;

        assertThat(DomainXml.disks(xml))
                .containsExactly(
                        new DomainXml.Disk("vda", "qcow2", "/var/lib/vms/web-1.qcow2", 2),
                        new DomainXml.Disk("sda", "raw", "/dev/vg0/data", 1));
    }

    @Test
    void rbdNetworkDisksNameTheirImageConfAndUserAndOtherProtocolsNone() {
        String xml =
                """
                <domain type='qemu'>
                  <devices>
                    <disk type='network' device='disk'>
                      <driver name='qemu' type='raw' cache='none'/>
                      <auth username='qemu'><secret type='ceph' usage='client.qemu secret'/></auth>
                      <source protocol='rbd' name='vms/web-1-disk0' index='3'>
                        <host name='10.0.0.1' port='6789'/>
                        <config file='/etc/ceph/prod.conf'/>
                      </source>
                      <target dev='vda' bus='virtio'/>
                    </disk>
                    <disk type='network' device='disk'>
                      <driver name='qemu' type='raw'/>
                      <source protocol='rbd' name='vms/tenant-a/data'>
                        <auth username='tenant'><secret type='ceph' uuid='0b4d2d4e-0000-0000-0000-000000000000'/></auth>
                      </source>
                      <target dev='vdb' bus='virtio'/>
                    </disk>
                    <disk type='network' device='disk'>
                      <driver name='qemu' type='raw'/>
                      <source protocol='rbd' name='vms/img@snap'/>
                      <target dev='vdc' bus='virtio'/>
                    </disk>
                    <disk type='network' device='disk'>
                      <driver name='qemu' type='raw'/>
                      <source protocol='iscsi' name='iqn.2013-06.com.example:iscsi-pool/1'/>
                      <target dev='sda' bus='scsi'/>
                    </disk>
                  </devices>
                </domain>
                """;

        assertThat(DomainXml.disks(xml))
                .extracting(DomainXml.Disk::target, DomainXml.Disk::rbd)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple(
                                "vda",
                                Optional.of(new RbdDisk(
                                        RbdImage.of("vms", "web-1-disk0"),
                                        Optional.of(Path.of("/etc/ceph/prod.conf")),
                                        Optional.of("qemu")))),
                        org.assertj.core.groups.Tuple.tuple(
                                "vdb",
                                Optional.of(new RbdDisk(
                                        new RbdImage("vms", Optional.of("tenant-a"), "data"),
                                        Optional.empty(),
                                        Optional.of("tenant")))),
                        org.assertj.core.groups.Tuple.tuple("vdc", Optional.empty()),
                        org.assertj.core.groups.Tuple.tuple("sda", Optional.empty()));
    }

    @Test
    void checkpointAndBackupDisks() {
        String checkpoint =
                """
                <domaincheckpoint>
                  <name>tm-1</name>
                  <disks>
                    <disk name='vda' checkpoint='bitmap' bitmap='tm-1'/>
                    <disk name='sda' checkpoint='no'/>
                  </disks>
                  <domain type='qemu'><devices><disk device='disk'><target dev='zzz'/></disk></devices></domain>
                </domaincheckpoint>
                """;
        assertThat(DomainXml.checkpointDisks(checkpoint)).isEqualTo(Map.of("vda", "bitmap", "sda", "no"));

        String backup =
                """
                <domainbackup mode='pull'>
                  <incremental>tm-1</incremental>
                  <server transport='unix' socket='/w/nbd.sock'/>
                  <disks>
                    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='tm-1'
                          exportname='vda' exportbitmap='backup-vda' index='6'/>
                    <disk name='sda' backup='yes' type='file' backupmode='full' exportname='sda' index='7'/>
                    <disk name='sdb' backup='no'/>
                  </disks>
                </domainbackup>
                """;
        assertThat(DomainXml.backupDisks(backup))
                .isEqualTo(Map.of(
                        "vda", new DomainXml.BackupDisk("vda", Optional.of("backup-vda")),
                        "sda", new DomainXml.BackupDisk("sda", Optional.empty())));
    }

    @Test
    void namesAreEscapedAndBadXmlIsPermanent() {
        assertThat(LibvirtXml.escape("a'b<c>&\"")).isEqualTo("a&apos;b&lt;c&gt;&amp;&quot;");
        assertThatThrownBy(() -> DomainXml.disks("<domain><devices>"))
                .isInstanceOf(PermanentException.class)
                .hasMessageContaining("XML");
        assertThatThrownBy(() -> DomainXml.disks("<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><d>&x;</d>"))
                .isInstanceOf(PermanentException.class);
    }
}
