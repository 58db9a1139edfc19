package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.ConsistencyAchieved;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.repository.DiskEntry;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.workers.libvirt.LibvirtDefinition;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DrDomainXmlTest {

    private static final String CAPTURED =
            """
            <domain type='kvm' id='7'>
              <name>db-1</name><uuid>5b1f3c4e-0000-4000-8000-000000000001</uuid>
              <memory unit='KiB'>1048576</memory><vcpu>2</vcpu>
              <os><type arch='x86_64' machine='pc-q35-9.9'>hvm</type></os>
              <cpu mode='host-passthrough'/>
              <devices>
                <disk type='network' device='disk'>
                  <driver name='qemu' type='raw'/>
                  <source protocol='rbd' name='rbd/db-1' index='2'><host name='mon1'/></source>
                  <target dev='vda' bus='virtio'/><serial>DB1</serial><alias name='virtio-disk0'/>
                </disk>
                <disk type='file' device='disk'>
                  <source file='/srv/scratch.qcow2'/><target dev='vdb' bus='virtio'/>
                </disk>
                <interface type='network'>
                  <mac address='52:54:00:0d:b1:01'/><source network='prod' portid='abc'/>
                  <target dev='vnet3'/><model type='virtio'/>
                </interface>
                <interface type='bridge'>
                  <mac address='52:54:00:0d:b1:02'/><source bridge='br-backup'/><model type='e1000'/>
                </interface>
              </devices>
              <seclabel type='dynamic' model='dac'/>
            </domain>
            """;

    private static final DrDomainXml.Host TCG_ONLY = new DrDomainXml.Host(
            "qemu",
            Optional.of("the DR host's CPU has no vmx/svm feature"),
            Set.of("pc-q35-7.2", "q35", "pc-i440fx-7.2", "pc"),
            false,
            true,
            true,
            Set.of("qemu64"));

    @Test
    void adaptsTheCapturedDomainToTheDrHostAndSaysWhat() {
        Manifest point = point(Optional.of(LibvirtDefinition.of(CAPTURED)));
        DrSite site = new DrSite(Path.of("/srv/dr"));
        RecoveryPlan.DrHost dr = new RecoveryPlan.DrHost(
                RecoveryPlan.HypervisorKind.LIBVIRT,
                "qemu:///system",
                RecoveryPlan.Accel.AUTO,
                Map.of("prod", "dr-prod"),
                true);

        DrDomainXml.Result r =
                DrDomainXml.build(vm(), point, List.of(Path.of("/srv/dr/db-1/vda.raw")), dr, TCG_ONLY, site);

        assertThat(r.xml())
                .contains("<domain type=\"qemu\">")
                .doesNotContain("id=\"7\"")
                .doesNotContain("<uuid>")
                .contains("machine=\"q35\"")
                .contains("<cpu check=\"none\" mode=\"maximum\"/>")
                .contains("<source file=\"/srv/dr/db-1/vda.raw\"/>")
                .contains("<driver name=\"qemu\" type=\"raw\"/>")
                .doesNotContain("rbd/db-1")
                .doesNotContain("scratch.qcow2")
                .contains("<serial>DB1</serial>")
                .contains("network=\"dr-prod\"")
                .doesNotContain("portid")
                .doesNotContain("vnet3")
                .doesNotContain("52:54:00:0d:b1:01")
                .doesNotContain("virtio-disk0")
                .doesNotContain("seclabel");
        assertThat(r.networks()).containsExactly("dr-prod");
        assertThat(r.bridges()).containsExactly("br-backup");
        assertThat(r.notes())
                .anySatisfy(n -> assertThat(n).contains("runs under TCG").contains("no vmx/svm"))
                .anySatisfy(n -> assertThat(n).contains("machine type pc-q35-9.9 is not offered"))
                .anySatisfy(n -> assertThat(n).contains("CPU mode host-passthrough is not offered"))
                .anySatisfy(n -> assertThat(n).contains("disk vdb is not in point"))
                .anySatisfy(n -> assertThat(n).contains("moves from network prod to dr-prod"))
                .anySatisfy(n -> assertThat(n).contains("gets a new MAC address"));
    }

    @Test
    void aPointWithoutADefinitionStartsWithThePlansSettingsAndSaysSo() {
        Manifest point = point(Optional.empty());
        DrDomainXml.Result r = DrDomainXml.build(
                vm(),
                point,
                List.of(Path.of("/srv/dr/db-1/vda.raw")),
                RecoveryPlan.DrHost.qmp(),
                TCG_ONLY,
                new DrSite(Path.of("/srv/dr")));

        assertThat(r.xml())
                .contains("<memory unit=\"MiB\">512</memory>")
                .contains("<vcpu>2</vcpu>")
                .contains("<source file=\"/srv/dr/db-1/vda.raw\"/><target bus=\"virtio\" dev=\"vda\"/>");
        assertThat(r.notes()).anySatisfy(n -> assertThat(n)
                .contains("has no captured definition: started with the plan's settings"));
    }

    @Test
    void qcow2DisksAreDefinedAsQcow2FilesWhetherCapturedOrFromThePlan() {
        RecoveryPlan.DrHost dr = new RecoveryPlan.DrHost(
                RecoveryPlan.HypervisorKind.LIBVIRT,
                "qemu:///system",
                RecoveryPlan.Accel.AUTO,
                Map.of(),
                false,
                RecoveryPlan.Disks.files(RecoveryPlan.DiskFormat.QCOW2));
        DrSite site = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.AUTO, RecoveryPlan.DiskFormat.QCOW2);
        List<Path> files = List.of(Path.of("/srv/dr/db-1/vda.qcow2"));

        DrDomainXml.Result captured =
                DrDomainXml.build(vm(), point(Optional.of(LibvirtDefinition.of(CAPTURED))), files, dr, TCG_ONLY, site);
        DrDomainXml.Result planned = DrDomainXml.build(vm(), point(Optional.empty()), files, dr, TCG_ONLY, site);

        assertThat(site.disk("db-1", "vda")).isEqualTo(Path.of("/srv/dr/db-1/vda.qcow2"));
        assertThat(captured.xml())
                .contains("<driver name=\"qemu\" type=\"qcow2\"/><source file=\"/srv/dr/db-1/vda.qcow2\"/>")
                .doesNotContain("type=\"raw\"")
                .doesNotContain("rbd/db-1");
        assertThat(planned.xml())
                .contains("<driver name=\"qemu\" type=\"qcow2\"/><source file=\"/srv/dr/db-1/vda.qcow2\"/>")
                .doesNotContain("type=\"raw\"");
    }

    @Test
    void rbdDisksAreNetworkDisksThatAuthenticateWithTheSecretNotTheKey() {
        RecoveryPlan.Rbd rbd =
                new RecoveryPlan.Rbd("dr", Path.of("/etc/ceph/ceph.conf"), "dr-1", Optional.of(Path.of("/k/dr.key")));
        RecoveryPlan.DrHost dr = new RecoveryPlan.DrHost(
                RecoveryPlan.HypervisorKind.LIBVIRT,
                "qemu:///system",
                RecoveryPlan.Accel.AUTO,
                Map.of(),
                false,
                new RecoveryPlan.Disks(RecoveryPlan.DiskFormat.RBD, Optional.of(rbd)));
        DrSite site = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.AUTO, dr.disks());
        List<Path> disks = List.of(site.disk("db-1", "vda"));

        DrDomainXml.Result captured =
                DrDomainXml.build(vm(), point(Optional.of(LibvirtDefinition.of(CAPTURED))), disks, dr, TCG_ONLY, site);
        DrDomainXml.Result planned = DrDomainXml.build(vm(), point(Optional.empty()), disks, dr, TCG_ONLY, site);

        String uuid = DrDomainXml.cephSecret(rbd).toString();
        assertThat(DrDomainXml.cephSecret(rbd).toString())
                .as("stable across runs")
                .isEqualTo(uuid);
        for (String xml : List.of(captured.xml(), planned.xml())) {
            assertThat(xml)
                    .contains("<disk device=\"disk\" type=\"network\">")
                    .contains("<driver name=\"qemu\" type=\"raw\"/>"
                            + "<source name=\"dr/db-1-vda\" protocol=\"rbd\"><config file=\"/etc/ceph/ceph.conf\"/>"
                            + "<auth username=\"dr-1\"><secret type=\"ceph\" uuid=\"" + uuid + "\"/></auth></source>")
                    .doesNotContain("/srv/dr/db-1")
                    .doesNotContain("/k/dr.key")
                    .doesNotContain("mon1");
        }
    }

    private static final String SIZED =
            """
            <domain type='qemu'>
              <name>db-1</name>
              <maxMemory slots='4' unit='KiB'>4194304</maxMemory>
              <memory unit='KiB'>1048576</memory><currentMemory unit='KiB'>1048576</currentMemory>
              <vcpu placement='static' current='2'>4</vcpu>
              <os><type arch='x86_64' machine='q35'>hvm</type></os>
              <cpu mode='custom' match='exact'>
                <model fallback='allow'>qemu64</model><topology sockets='1' cores='2' threads='2'/>
                <numa><cell id='0' cpus='0-3' memory='1048576' unit='KiB'/></numa>
              </cpu>
              <devices>
                <disk type='file' device='disk'><source file='/srv/db.qcow2'/><target dev='vda' bus='virtio'/></disk>
              </devices>
            </domain>
            """;

    @Test
    void thePlansMemoryAndCpusOverrideTheCapturedOnesAndSaySo() {
        RecoveryPlan.Vm vm = new RecoveryPlan.Vm(
                "db-1",
                384,
                3,
                List.of(),
                List.of(),
                java.util.EnumSet.of(RecoveryPlan.Setting.MEMORY, RecoveryPlan.Setting.CPUS));

        DrDomainXml.Result r = build(vm, SIZED);

        assertThat(r.xml())
                .contains("<memory unit=\"MiB\">384</memory>")
                .contains("<currentMemory unit=\"MiB\">384</currentMemory>")
                .contains("<vcpu placement=\"static\">3</vcpu>")
                .contains("<topology cores=\"1\" sockets=\"3\" threads=\"1\"/>")
                .doesNotContain("1048576")
                .doesNotContain("<numa>")
                .as("memory hot-plug needs NUMA cells")
                .doesNotContain("maxMemory");
        assertThat(r.notes())
                .anySatisfy(n -> assertThat(n).isEqualTo("memory 384 MiB from the plan (captured: 1024 MiB)"))
                .anySatisfy(n -> assertThat(n).isEqualTo("3 vCPU(s) from the plan (captured: 4)"))
                .anySatisfy(n -> assertThat(n).contains("CPU topology: 3 socket(s)"))
                .anySatisfy(n -> assertThat(n).contains("NUMA cells"));
    }

    @Test
    void settingsThePlanLeavesToTheirDefaultsKeepTheCapturedOnes() {
        RecoveryPlan.Vm onlyCpus = new RecoveryPlan.Vm(
                "db-1", 128, 2, List.of(), List.of(), java.util.EnumSet.of(RecoveryPlan.Setting.CPUS));

        DrDomainXml.Result r = build(onlyCpus, SIZED);

        assertThat(r.xml())
                .contains("<memory unit=\"KiB\">1048576</memory>")
                .contains("<vcpu placement=\"static\">2</vcpu>")
                .as("the captured topology (1 x 2 x 2) no longer adds up to 2 vCPUs: flattened")
                .contains("sockets=\"2\"");
        assertThat(r.notes()).noneSatisfy(n -> assertThat(n).startsWith("memory "));

        DrDomainXml.Result none = build(
                new RecoveryPlan.Vm(
                        "db-1", 128, 1, List.of(), List.of(), java.util.EnumSet.noneOf(RecoveryPlan.Setting.class)),
                SIZED);
        assertThat(none.xml())
                .contains("<memory unit=\"KiB\">1048576</memory>")
                .contains("current=\"2\"")
                .contains("<numa>")
                .contains("<maxMemory");
        assertThat(none.notes()).noneSatisfy(n -> assertThat(n).contains("from the plan"));
    }

    @Test
    void thePlansQemuArgsGoThroughLibvirtsQemuNamespace() {
        RecoveryPlan.Vm vm = new RecoveryPlan.Vm(
                "db-1",
                128,
                1,
                List.of("-device", "virtio-rng-pci"),
                List.of(),
                java.util.EnumSet.noneOf(RecoveryPlan.Setting.class));

        DrDomainXml.Result r = build(vm, SIZED);

        assertThat(r.xml())
                .contains("xmlns:qemu=\"" + DrDomainXml.QEMU_NS + "\"")
                .contains("<qemu:commandline><qemu:arg value=\"-device\"/><qemu:arg value=\"virtio-rng-pci\"/>"
                        + "</qemu:commandline>");
        assertThat(r.notes()).anySatisfy(n -> assertThat(n).contains("qemu-args (-device virtio-rng-pci)"));
    }

    @Test
    void anAcceleratorInTheQemuArgsIsAProblemOnLibvirtWhichChoosesItByTheDomainType() {
        RecoveryPlan.Vm accel = new RecoveryPlan.Vm(
                "db-1",
                128,
                1,
                List.of("-accel", "kvm"),
                List.of(),
                java.util.EnumSet.noneOf(RecoveryPlan.Setting.class));
        RecoveryPlan.Vm rng = new RecoveryPlan.Vm(
                "db-1",
                128,
                1,
                List.of("-device", "virtio-rng-pci"),
                List.of(),
                java.util.EnumSet.noneOf(RecoveryPlan.Setting.class));

        assertThat(DrDomainXml.planProblems(accel))
                .singleElement()
                .satisfies(p -> assertThat(p).contains("db-1").contains("set dr-host.accel"));
        assertThat(DrDomainXml.planProblems(rng)).isEmpty();
    }

    private static DrDomainXml.Result build(RecoveryPlan.Vm vm, String captured) {
        return DrDomainXml.build(
                vm,
                point(Optional.of(LibvirtDefinition.of(captured))),
                List.of(Path.of("/srv/dr/db-1/vda.raw")),
                new RecoveryPlan.DrHost(
                        RecoveryPlan.HypervisorKind.LIBVIRT,
                        "qemu:///system",
                        RecoveryPlan.Accel.AUTO,
                        Map.of(),
                        false),
                TCG_ONLY,
                new DrSite(Path.of("/srv/dr")));
    }

    private static RecoveryPlan.Vm vm() {
        return new RecoveryPlan.Vm("db-1", 512, 2, List.of(), List.of());
    }

    private static Manifest point(Optional<VmDefinition> def) {
        Instant t = Instant.parse("2026-12-07T01:00:00Z");
        return new Manifest(
                1,
                "20261207T010000.000Z-aaaa",
                "db-1",
                "hv1",
                "j",
                t,
                t,
                ConsistencyAchieved.CRASH,
                Trigger.schedule("p"),
                "p",
                Optional.empty(),
                List.of(new DiskEntry("vda", 1 << 20, 1 << 18, "00", "tm-x", Optional.empty(), 0, 0)),
                Optional.empty(),
                def);
    }
}
