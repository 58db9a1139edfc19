package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.hypervisor.Accelerators;
import io.tidemark.policies.RecoveryPlan;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

class DrSiteTest {

    private static RecoveryPlan.Vm vm(List<String> args) {
        return new RecoveryPlan.Vm("db-1", 64, 1, args, List.of(), java.util.Set.of()); // plan defaults
    }

    private static int count(List<String> cmd, String arg) {
        return Collections.frequency(cmd, arg);
    }

    @Test
    void theAcceleratorIsChosenNotHardCodedAndThePlansOwnWins() {
        List<String> auto = new DrSite(Path.of("/srv/dr")).command(vm(List.of()), List.of("sd0"));
        List<String> tcg = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.TCG).command(vm(List.of()), List.of());
        List<String> kvm = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.KVM).command(vm(List.of()), List.of());
        List<String> own = new DrSite(Path.of("/srv/dr")).command(vm(List.of("-accel", "hvf")), List.of());

        // auto: KVM first (QEMU falls back to the next -accel) only where this host can run KVM guests
        assertThat(auto.subList(3, auto.indexOf("-display")))
                .isEqualTo(
                        Accelerators.whyNoKvm().isEmpty()
                                ? List.of("-accel", "kvm", "-accel", "tcg")
                                : List.of("-accel", "tcg"));
        assertThat(tcg).containsSubsequence("-accel", "tcg").doesNotContain("kvm");
        assertThat(kvm).containsSubsequence("-accel", "kvm").doesNotContain("tcg");
        // the plan's -accel is the only one: ours would come first and win
        assertThat(count(own, "-accel")).isEqualTo(1);
        assertThat(own.get(own.indexOf("-accel") + 1)).isEqualTo("hvf");
    }

    @Test
    void qcow2DisksOpenThroughTheQcow2DriverFromTheirQcow2Files() {
        DrSite raw = new DrSite(Path.of("/srv/dr"));
        DrSite qcow2 = new DrSite(Path.of("/srv/dr"), RecoveryPlan.Accel.TCG, RecoveryPlan.DiskFormat.QCOW2);

        List<String> rawCmd = raw.command(vm(List.of()), List.of("sd0"));
        List<String> qcow2Cmd = qcow2.command(vm(List.of()), List.of("sd0"));

        assertThat(raw.disk("web-1", "sd0")).isEqualTo(Path.of("/srv/dr/web-1/sd0.raw"));
        assertThat(qcow2.disk("web-1", "sd0")).isEqualTo(Path.of("/srv/dr/web-1/sd0.qcow2"));
        assertThat(rawCmd).contains("driver=raw,file=sd0-file,node-name=sd0-disk");
        assertThat(qcow2Cmd)
                .contains("driver=file,filename=/srv/dr/db-1/sd0.qcow2,node-name=sd0-file")
                .contains("driver=qcow2,file=sd0-file,node-name=sd0-disk")
                .noneMatch(a -> a.contains("driver=raw") || a.contains(".raw"));
    }

    @Test
    void rbdDisksOpenThroughTheRbdDriverWithTheKeyFromItsFileNeverOnTheCommandLine() {
        DrSite site = new DrSite(
                Path.of("/srv/dr"),
                RecoveryPlan.Accel.TCG,
                new RecoveryPlan.Disks(
                        RecoveryPlan.DiskFormat.RBD,
                        java.util.Optional.of(new RecoveryPlan.Rbd(
                                "dr",
                                Path.of("/etc/ceph/ceph.conf"),
                                "dr-1",
                                java.util.Optional.of(Path.of("/etc/tidemark/dr.key"))))));

        List<String> cmd = site.command(vm(List.of()), List.of("sd0"));

        assertThat(site.rbdSpec("db-1", "sd0"))
                .contains("rbd:dr/db-1-sd0:conf=/etc/ceph/ceph.conf:id=dr-1:keyfile=/etc/tidemark/dr.key");
        assertThat(cmd)
                .containsSubsequence(
                        "-object",
                        "secret,id=sd0-key,format=base64,file=/etc/tidemark/dr.key",
                        "-blockdev",
                        "driver=rbd,pool=dr,image=db-1-sd0,conf=/etc/ceph/ceph.conf,user=dr-1,key-secret=sd0-key,"
                                + "node-name=sd0-file",
                        "-blockdev",
                        "driver=raw,file=sd0-file,node-name=sd0-disk")
                .noneMatch(a -> a.contains("/srv/dr/db-1"));
    }

    @Test
    void aCapturedDefinitionGivesMachineCpusMemorySerialsAndNicsAndWhatCannotRunHereIsNoted() {
        io.tidemark.core.repository.VmDefinition def = new io.tidemark.core.repository.VmDefinition(
                1,
                "qmp",
                "pc-q35-7.2",
                "x86_64",
                2,
                256L << 20,
                java.util.Optional.of("qemu64"),
                java.util.Optional.of("bios"),
                List.of(new io.tidemark.core.repository.VmDefinition.Disk(
                        "sd0",
                        "scsi",
                        java.util.Optional.of("scsi-hd"),
                        java.util.Optional.of("S,1"),
                        java.util.Optional.of("qcow2"))),
                List.of(new io.tidemark.core.repository.VmDefinition.Nic(
                        "nic0", "52:54:00:12:34:56", "e1000", java.util.Optional.of("n0"))),
                java.util.Optional.empty(),
                List.of());
        List<String> notes = new java.util.ArrayList<>();
        List<String> cmd = new DrSite(Path.of("/srv/dr"))
                .command(vm(List.of("-m", "512")), List.of("sd0"), java.util.Optional.of(def), notes);
        List<String> newer = new java.util.ArrayList<>();
        List<String> cmd2 = new DrSite(Path.of("/srv/dr"))
                .command(
                        vm(List.of()),
                        List.of("sd0"),
                        java.util.Optional.of(new io.tidemark.core.repository.VmDefinition(
                                1,
                                "libvirt",
                                "pc-q35-99.0",
                                "x86_64",
                                1,
                                64L << 20,
                                java.util.Optional.of("host-passthrough"),
                                java.util.Optional.empty(),
                                List.of(),
                                List.of(),
                                java.util.Optional.empty(),
                                List.of())),
                        newer);

        assertThat(cmd)
                .containsSubsequence("-machine", "pc-q35-7.2")
                .containsSubsequence("-m", "256")
                .containsSubsequence("-smp", "2")
                .containsSubsequence("-cpu", "qemu64")
                .contains("scsi-hd,drive=sd0-disk,id=sd0,share-rw=on,serial=S,,1")
                .containsSubsequence("-nic", "user,mac=52:54:00:12:34:56,model=e1000");
        // the plan's qemu-args come last: QEMU takes the last -m
        assertThat(cmd.subList(cmd.size() - 2, cmd.size())).containsExactly("-m", "512");
        assertThat(notes).anySatisfy(n -> assertThat(n).contains("keep their MAC"));
        assertThat(cmd2).containsSubsequence("-machine", "q35");
        assertThat(newer).anySatisfy(n -> assertThat(n).contains("machine type pc-q35-99.0 is not offered"));
        if (Accelerators.whyNoKvm().isPresent()) {
            assertThat(cmd2).containsSubsequence("-cpu", "max");
            assertThat(newer).anySatisfy(n -> assertThat(n).contains("CPU model host needs KVM"));
        }
    }

    @Test
    void memoryAndCpusThePlanGivesItselfWinOverTheCapturedOnesAndAreNoted() {
        io.tidemark.core.repository.VmDefinition def = new io.tidemark.core.repository.VmDefinition(
                1,
                "qmp",
                "q35",
                "x86_64",
                2,
                256L << 20,
                java.util.Optional.empty(),
                java.util.Optional.empty(),
                List.of(),
                List.of(),
                java.util.Optional.empty(),
                List.of());
        List<String> notes = new java.util.ArrayList<>();
        List<String> cmd = new DrSite(Path.of("/srv/dr"))
                .command(
                        new RecoveryPlan.Vm(
                                "db-1", 384, 1, List.of(), List.of(), java.util.Set.of(RecoveryPlan.Setting.MEMORY)),
                        List.of("sd0"),
                        java.util.Optional.of(def),
                        notes);

        assertThat(cmd)
                .as("memory from the plan, CPUs as captured (the plan leaves them to the default)")
                .containsSubsequence("-m", "384")
                .containsSubsequence("-smp", "2");
        assertThat(notes).contains("memory 384 MiB from the plan (captured: 256 MiB)");
        assertThat(notes).noneSatisfy(n -> assertThat(n).contains("vCPU(s) from the plan"));
    }
}
