package io.tidemark.workers.libvirt;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.repository.VmDefinition;
import org.junit.jupiter.api.Test;

class LibvirtDefinitionTest {

    /** A domain defined by hand with every kind of secret libvirt's XML can carry. */
    private static final String DOMAIN =
            """
            <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
              <name>db-1</name>
              <memory unit='KiB'>1048576</memory>
              <vcpu placement='static'>4</vcpu>
              <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
              <cpu mode='host-passthrough'/>
              <devices>
                <disk type='file' device='disk'>
                  <driver name='qemu' type='qcow2'/>
                  <source file='/var/lib/libvirt/images/db-1.qcow2'>
                    <encryption format='luks'><secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/></encryption>
                  </source>
                  <target dev='vda' bus='virtio'/>
                  <serial>DB1-ROOT</serial>
                </disk>
                <disk type='network' device='disk'>
                  <driver name='qemu' type='raw'/>
                  <auth username='libvirt'><secret type='ceph' usage='client.libvirt secret'/></auth>
                  <source protocol='rbd' name='rbd/db-1-data'><host name='mon1' port='6789'/></source>
                  <target dev='vdb' bus='virtio'/>
                </disk>
                <disk type='network' device='disk'>
                  <source protocol='iscsi' name='iqn.2013-06.com.example:iscsi-pool/1'>
                    <host name='example.com' port='3260'/>
                    <auth username='myuser'><secret type='iscsi' usage='libvirtiscsi'/></auth>
                  </source>
                  <target dev='sda' bus='scsi'/>
                </disk>
                <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/></disk>
                <interface type='bridge'>
                  <mac address='52:54:00:0d:b1:01'/><source bridge='br-prod'/><model type='virtio'/>
                </interface>
                <interface type='network'>
                  <mac address='52:54:00:0d:b1:02'/><source network='backup-net'/><model type='e1000'/>
                </interface>
                <graphics type='vnc' port='-1' passwd='hunter2-vnc'/>
                <graphics type='spice' autoport='yes' passwd='hunter2-spice'/>
              </devices>
              <qemu:commandline><qemu:arg value='-object'/><qemu:arg value='secret,id=s0,data=hunter2-qemu'/></qemu:commandline>
            </domain>
            """;

    @Test
    void noSecretReachesTheDefinitionAndEachRemovalIsNamed() {
        VmDefinition d = LibvirtDefinition.of(DOMAIN);
        String xml = d.domainXml().orElseThrow();
        assertThat(xml)
                .doesNotContain("hunter2")
                .doesNotContain("0a81f5b2")
                .doesNotContain("client.libvirt secret")
                .doesNotContain("libvirtiscsi")
                .doesNotContain("myuser")
                .doesNotContain("passwd")
                .contains("rbd/db-1-data", "br-prod", "DB1-ROOT");
        assertThat(d.toString()).doesNotContain("hunter2");
        assertThat(d.redacted())
                .containsExactlyInAnyOrder(
                        "./devices/disk[file]/source/encryption/secret",
                        "./devices/disk[network]/auth",
                        "./devices/disk[network]/source/auth",
                        "./devices/graphics[vnc]/@passwd",
                        "./devices/graphics[spice]/@passwd",
                        "./qemu:commandline");
    }

    @Test
    void readsTheFactsAFailoverNeeds() {
        VmDefinition d = LibvirtDefinition.of(DOMAIN);
        assertThat(d.source()).isEqualTo(VmDefinition.LIBVIRT);
        assertThat(d.machine()).isEqualTo("pc-q35-7.2");
        assertThat(d.cpus()).isEqualTo(4);
        assertThat(d.memoryBytes()).isEqualTo(1L << 30);
        assertThat(d.cpuModel()).contains("host-passthrough");
        assertThat(d.firmware()).contains("efi");
        assertThat(d.disks())
                .extracting(VmDefinition.Disk::name, VmDefinition.Disk::bus)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("vda", "virtio"),
                        org.assertj.core.groups.Tuple.tuple("vdb", "virtio"),
                        org.assertj.core.groups.Tuple.tuple("sda", "scsi"));
        assertThat(d.disks().get(0).serial()).contains("DB1-ROOT");
        assertThat(d.nics())
                .extracting(VmDefinition.Nic::mac, VmDefinition.Nic::model, n -> n.network()
                        .orElse(""))
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("52:54:00:0d:b1:01", "virtio", "bridge:br-prod"),
                        org.assertj.core.groups.Tuple.tuple("52:54:00:0d:b1:02", "e1000", "network:backup-net"));
    }
}
