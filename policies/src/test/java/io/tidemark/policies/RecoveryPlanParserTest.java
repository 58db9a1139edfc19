package io.tidemark.policies;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecoveryPlanParserTest {

    static final Path FILE = Path.of("plans/dr-east.yaml");

    final RecoveryPlanParser parser = new RecoveryPlanParser();

    private RecoveryPlan parse(String yaml) {
        return parser.parse(FILE, yaml.getBytes(UTF_8));
    }

    private List<String> problems(String yaml) {
        PolicyException e = assertThrows(PolicyException.class, () -> parse(yaml));
        return e.problems().stream().map(PolicyProblem::toString).toList();
    }

    @Test
    void readsAFullPlanInBootOrderWithDefaults() {
        RecoveryPlan plan = parse(
                """
                site: dr-east
                source: offsite
                work-dir: /srv/dr
                home-dir: /srv/home
                groups:
                  - name: data
                    vms:
                      - name: db-1
                        memory: 512
                        cpus: 2
                        qemu-args: ["-device", "virtio-rng-pci"]
                      - name: queue-1
                        consistent-with: [db-1]
                  - name: apps
                    vms:
                      - name: web-1
                """);
        assertThat(plan.site()).isEqualTo("dr-east");
        assertThat(plan.source()).isEqualTo("offsite");
        assertThat(plan.workDir()).isEqualTo(Path.of("/srv/dr"));
        assertThat(plan.homeDir()).contains(Path.of("/srv/home"));
        assertThat(plan.groups()).extracting(RecoveryPlan.Group::name).containsExactly("data", "apps");
        assertThat(plan.vms()).extracting(RecoveryPlan.Vm::name).containsExactly("db-1", "queue-1", "web-1");
        RecoveryPlan.Vm db = plan.vm("db-1").orElseThrow();
        assertThat(db.memoryMiB()).isEqualTo(512);
        assertThat(db.cpus()).isEqualTo(2);
        assertThat(db.qemuArgs()).containsExactly("-device", "virtio-rng-pci");
        RecoveryPlan.Vm web = plan.vm("web-1").orElseThrow();
        assertThat(web.memoryMiB()).isEqualTo(RecoveryPlanParser.DEFAULT_MEMORY_MIB);
        assertThat(web.cpus()).isEqualTo(1);
        assertThat(plan.vm("queue-1").orElseThrow().consistentWith()).containsExactly("db-1");
        assertThat(plan.homeDir()).isPresent();
    }

    @Test
    void tellsTheSettingsThePlanGivesFromTheDefaults() {
        RecoveryPlan plan = parse(
                """
                site: dr-east
                source: offsite
                work-dir: /srv/dr
                groups:
                  - name: data
                    vms:
                      - {name: db-1, memory: 512, cpus: 2}
                      - {name: queue-1, cpus: 1}
                      - {name: web-1}
                """);
        assertThat(plan.vm("db-1").orElseThrow().explicit())
                .containsExactlyInAnyOrder(RecoveryPlan.Setting.MEMORY, RecoveryPlan.Setting.CPUS);
        RecoveryPlan.Vm queue = plan.vm("queue-1").orElseThrow();
        assertThat(queue.sets(RecoveryPlan.Setting.CPUS)).isTrue();
        assertThat(queue.sets(RecoveryPlan.Setting.MEMORY))
                .as("memory left to its default")
                .isFalse();
        assertThat(plan.vm("web-1").orElseThrow().explicit()).isEmpty();
        assertThat(plan.vm("web-1").orElseThrow().memoryMiB()).isEqualTo(RecoveryPlanParser.DEFAULT_MEMORY_MIB);
    }

    @Test
    void aPlanWithoutDrHostRunsQemuProcessesAndOneWithItDefaultsToLibvirt() {
        String groups =
                """
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """;
        RecoveryPlan plain = parse("site: s\nsource: t\nwork-dir: /w\n" + groups);
        RecoveryPlan libvirt = parse(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  networks: {prod: dr-prod, br0: br-dr}
                  macs: new
                """
                        + groups);
        RecoveryPlan qmp = parse(
                """
                site: s
                source: t
                work-dir: /w
                dr-host: {hypervisor: qmp, accel: tcg}
                """
                        + groups);

        assertThat(plain.drHost()).isEqualTo(RecoveryPlan.DrHost.qmp());
        assertThat(libvirt.drHost().kind()).isEqualTo(RecoveryPlan.HypervisorKind.LIBVIRT);
        assertThat(libvirt.drHost().uri()).isEqualTo("qemu:///system");
        assertThat(libvirt.drHost().accel()).isEqualTo(RecoveryPlan.Accel.AUTO);
        assertThat(libvirt.drHost().networks()).containsEntry("prod", "dr-prod").containsEntry("br0", "br-dr");
        assertThat(libvirt.drHost().newMacs()).isTrue();
        assertThat(qmp.drHost().kind()).isEqualTo(RecoveryPlan.HypervisorKind.QMP);
        assertThat(qmp.drHost().accel()).isEqualTo(RecoveryPlan.Accel.TCG);
    }

    @Test
    void drHostDisksFormatIsRawUnlessThePlanSaysQcow2() {
        String groups =
                """
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """;
        RecoveryPlan plain = parse("site: s\nsource: t\nwork-dir: /w\ndr-host: {hypervisor: qmp}\n" + groups);
        RecoveryPlan qcow2 = parse(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  hypervisor: qmp
                  disks: {format: qcow2}
                """
                        + groups);

        RecoveryPlan rbd = parse(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  hypervisor: qmp
                  disks: {format: rbd, pool: dr, ceph-conf: /c/ceph.conf, user: dr-1, key-file: /k/dr.key}
                """
                        + groups);

        assertThat(plain.drHost().disks()).isEqualTo(RecoveryPlan.Disks.RAW);
        assertThat(qcow2.drHost().disks().format()).isEqualTo(RecoveryPlan.DiskFormat.QCOW2);
        assertThat(rbd.drHost().disks().format()).isEqualTo(RecoveryPlan.DiskFormat.RBD);
        assertThat(rbd.drHost().disks().rbd())
                .contains(new RecoveryPlan.Rbd(
                        "dr", Path.of("/c/ceph.conf"), "dr-1", java.util.Optional.of(Path.of("/k/dr.key"))));
    }

    @Test
    void badDrHostDisksAreNamedWithTheirPlace() {
        List<String> p = problems(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  disks:
                    format: vmdk
                    secret: x
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """);
        List<String> notMapping = problems(
                """
                site: s
                source: t
                work-dir: /w
                dr-host: {disks: qcow2}
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """);
        assertThat(p)
                .anySatisfy(x ->
                        assertThat(x).contains(":6:13: dr-host.disks.format: expected raw, qcow2, rbd, got \"vmdk\""))
                .anySatisfy(x -> assertThat(x).contains(":7:5: dr-host.disks.secret: unknown key 'secret'"));
        List<String> misplaced = problems(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  disks: {format: qcow2, pool: dr}
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """);
        List<String> rbdOnLibvirt = problems(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  disks: {format: rbd}
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """);
        assertThat(misplaced)
                .anySatisfy(x -> assertThat(x).contains("dr-host.disks.pool: pool is for format: rbd only"));
        assertThat(rbdOnLibvirt)
                .anySatisfy(x -> assertThat(x).contains("dr-host.disks.pool: missing required key 'pool'"))
                .anySatisfy(x ->
                        assertThat(x).contains("dr-host.disks.format: RBD disks on hypervisor: libvirt need key-file"));
        assertThat(notMapping)
                .anySatisfy(x -> assertThat(x).contains("dr-host.disks: expected a mapping with format, got"));
    }

    @Test
    void badDrHostValuesAreNamedWithTheirPlace() {
        List<String> p = problems(
                """
                site: s
                source: t
                work-dir: /w
                dr-host:
                  hypervisor: xen
                  accel: fast
                  macs: random
                  uri: qemu:///system
                  bridge: br0
                groups:
                  - name: apps
                    vms:
                      - name: web-1
                """);
        assertThat(p)
                .anySatisfy(x -> assertThat(x).contains("dr-host.hypervisor: expected libvirt, qmp, got \"xen\""))
                .anySatisfy(x -> assertThat(x).contains("dr-host.accel: expected auto, kvm, tcg, got \"fast\""))
                .anySatisfy(x -> assertThat(x).contains("dr-host.macs: expected keep, new, got \"random\""))
                .anySatisfy(x -> assertThat(x).contains("dr-host.bridge: unknown key 'bridge'"));
    }

    @Test
    void reportsEveryProblemWithFileLineColumnAndKeyPath() {
        List<String> p = problems(
                """
                site: dr-east
                sorce: offsite
                work-dir: /srv/dr
                groups:
                  - name: data
                    vms:
                      - name: db-1
                        memory: lots
                      - name: db-1
                        cpus: 0
                  - name: apps
                    vms:
                      - name: web-1
                        consistent-with: [db-9]
                        colour: blue
                """);
        assertThat(p)
                .containsExactly(
                        "plans/dr-east.yaml:1:1: source: missing required key 'source'",
                        "plans/dr-east.yaml:2:1: sorce: unknown key 'sorce'; did you mean 'source'?",
                        "plans/dr-east.yaml:8:17: groups[0].vms[0].memory: expected a whole number from 0 to 100000,"
                                + " got \"lots\"",
                        "plans/dr-east.yaml:9:15: groups[0].vms[1].name: VM 'db-1' is already in the plan at line 7",
                        "plans/dr-east.yaml:10:15: groups[0].vms[1].cpus: must be greater than zero",
                        "plans/dr-east.yaml:14:27: groups[1].vms[0].consistent-with[0]: 'db-9' is not a VM of this"
                                + " plan; it has db-1, web-1",
                        "plans/dr-east.yaml:15:9: groups[1].vms[0].colour: unknown key 'colour'; expected one of:"
                                + " name, memory, cpus, qemu-args, consistent-with, continuous");
    }

    @Test
    void wrongShapesAreNamed() {
        assertThat(problems("site: a\nsource: b\nwork-dir: /w\ngroups: {name: x}\n"))
                .containsExactly(
                        "plans/dr-east.yaml:4:9: groups: expected a list of groups with name and vms, got a mapping");
        assertThat(problems("site: a\nsource: b\nwork-dir: /w\ngroups: []\n"))
                .containsExactly("plans/dr-east.yaml:4:9: groups: the list is empty; give at least one groups with"
                        + " name and vms");
        assertThat(problems("- just\n- a list\n"))
                .containsExactly("plans/dr-east.yaml:1:1: expected a mapping with site, source, work-dir and groups,"
                        + " got a list");
        assertThat(problems(""))
                .containsExactly(
                        "plans/dr-east.yaml:1:1: the plan is empty; it needs site, source," + " work-dir and groups");
        assertThat(problems("site: [unclosed\n"))
                .singleElement()
                .asString()
                .startsWith("plans/dr-east.yaml:2:1: invalid YAML");
    }

    @Test
    void aVmThatNamesItselfIsRefused() {
        assertThat(
                        problems(
                                """
                        site: s
                        source: t
                        work-dir: /w
                        groups:
                          - name: g
                            vms:
                              - {name: a, consistent-with: [a]}
                        """))
                .containsExactly("plans/dr-east.yaml:7:37: groups[0].vms[0].consistent-with[0]: VM 'a' names itself");
    }

    @Test
    void readsAFileAndNamesAMissingOne(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("p.yaml");
        Files.writeString(f, "site: s\nsource: t\nwork-dir: /w\ngroups:\n  - {name: g, vms: [{name: a}]}\n");
        assertThat(parser.parseFile(f).homeDir()).isEqualTo(Optional.empty());
        PolicyException e = assertThrows(PolicyException.class, () -> parser.parseFile(dir.resolve("nope.yaml")));
        assertThat(e.getMessage()).startsWith(dir.resolve("nope.yaml") + ": cannot read the plan");
    }

    @Test
    void aContinuousVmNamesItsReplicasDaemonsAndPointsPerDiskInOrder() {
        RecoveryPlan plan = parse(
                """
                site: dr
                source: offsite
                work-dir: /srv/dr
                groups:
                  - name: data
                    vms:
                      - name: orders-1
                        continuous:
                          disks:
                            sd1: {replica: /dr/orders-1-sd1.raw}
                            sd0: {replica: /dr/orders-1-sd0.raw, qmp: /run/dr/o.qmp, points: /dr/points/o-sd0}
                      - name: web-1
                """);

        RecoveryPlan.Vm vm = plan.vm("orders-1").orElseThrow();
        assertThat(vm.isContinuous()).isTrue();
        assertThat(vm.continuous().orElseThrow().disks().keySet()).containsExactly("sd1", "sd0");
        RecoveryPlan.ReplicaDisk sd0 = vm.continuous().orElseThrow().disks().get("sd0");
        assertThat(sd0.replica()).isEqualTo(java.nio.file.Path.of("/dr/orders-1-sd0.raw"));
        assertThat(sd0.drQmp()).contains(java.nio.file.Path.of("/run/dr/o.qmp"));
        assertThat(sd0.points()).contains(java.nio.file.Path.of("/dr/points/o-sd0"));
        assertThat(plan.vm("web-1").orElseThrow().isContinuous()).isFalse();
    }

    @Test
    void aContinuousDiskWithoutAReplicaOrWithAnUnknownKeyIsAnError() {
        String message = String.join(
                "\n",
                problems(
                        """
                site: dr
                source: offsite
                work-dir: /srv/dr
                groups:
                  - name: data
                    vms:
                      - name: orders-1
                        continuous:
                          disks:
                            sd0: {qmp: /run/dr/o.qmp, replca: /dr/x.raw}
                """));
        assertThat(message).contains("groups[0].vms[0].continuous.disks.sd0").contains("replica");
        assertThat(message).contains("replca");
    }
}
