package io.tidemark.recovery;

import static org.assertj.core.api.Assertions.assertThat;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.format.ManifestCodec;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.policies.RecoveryPlanParser;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.libvirt.LibvirtDefinition;
import io.tidemark.workers.libvirt.LibvirtHypervisor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failover onto a real libvirt DR host (a second isolated libvirtd; domain type qemu here, since
 * this machine cannot run KVM guests): the tiny guest runs as a libvirt domain at the source with
 * a serial on its disk, a NIC with a fixed MAC and a VNC password, is backed up by the real worker
 * (its domain XML goes into the manifest, without the password), and the failover defines and
 * starts it at the DR host from that definition on the restored disk. Checks: the dry run passes
 * and names a network the DR host lacks; the DR domain keeps the MAC, the serial and the machine
 * type, takes the plan's memory and CPUs over the captured ones (and says so), runs as type qemu
 * and the result says TCG and why; the guest boots, its agent answers and
 * reads the file written before the backup.
 */
class LibvirtFailoverIT {

    private static final String VM = "web-1";
    private static final String MAC = "52:54:00:7d:00:01";

    @TempDir
    Path dir;

    @Test
    void definesAndStartsTheCapturedDomainAtTheDrHostAndItsGuestAnswers() throws Exception {
        List<Path> kernel = TinyGuest.build();
        Path src = Files.createDirectories(dir.resolve("s"));
        Path disk = src.resolve("vda.qcow2");
        makeDataDisk(src, disk);
        Path repoDir = dir.resolve("repo");
        try (Libvirtd source = Libvirtd.start(dir.resolve("lv-src"));
                Libvirtd dr = Libvirtd.start(dir.resolve("lv-dr"))) {
            // the protected VM, as an operator would define it
            Path console = src.resolve("web-1.console");
            Path agentSocket = src.resolve("web-1.qga"); // libvirt connects to it: tests ask through virsh
            Files.writeString(
                    src.resolve("dom.xml"),
                    """
                    <domain type='qemu'>
                      <name>%s</name>
                      <memory unit='MiB'>256</memory>
                      <vcpu>1</vcpu>
                      <os>
                        <type arch='x86_64' machine='q35'>hvm</type>
                        <kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 panic=-1 quiet</cmdline>
                      </os>
                      <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
                      <on_reboot>destroy</on_reboot>
                      <devices>
                        <disk type='file' device='disk'>
                          <driver name='qemu' type='qcow2'/><source file='%s'/>
                          <target dev='vda' bus='virtio'/><serial>WEB1-DATA</serial>
                        </disk>
                        <interface type='user'><mac address='%s'/><model type='virtio'/></interface>
                        <serial type='file'><source path='%s'/><target port='0'/></serial>
                        <channel type='unix'>
                          <source mode='bind' path='%s'/><target type='virtio' name='org.qemu.guest_agent.0'/>
                        </channel>
                        <graphics type='vnc' socket='%s' passwd='s3cr3tvn'/>
                        <memballoon model='none'/>
                      </devices>
                    </domain>
                    """
                            .formatted(
                                    VM,
                                    kernel.get(0),
                                    kernel.get(1),
                                    disk,
                                    MAC,
                                    console,
                                    agentSocket,
                                    src.resolve("vnc.sock")));
            source.virsh("define", src.resolve("dom.xml").toString());
            source.virsh("start", VM);
            awaitReady(console, source);
            sh(source, "echo written-before-the-backup > /mnt/marker && sync");

            // the backup: the manifest carries the domain's definition, without the VNC password
            Manifest point;
            try (FileObjectTarget target = new FileObjectTarget(Files.createDirectories(repoDir));
                    LibvirtHypervisor hv = new LibvirtHypervisor(source.uri());
                    BackupWorker worker = new BackupWorker(
                            "hv1",
                            hv,
                            Repository.openOrInit(target, RepositoryConfig.defaults()),
                            new RecordingEventBus(),
                            Clock.systemUTC(),
                            dir.resolve("work"),
                            CaptureHooks.NONE,
                            NbdBlockSource::open)) {
                Instant firing = Instant.now();
                point = worker.backup(
                        "p/" + VM + "/1", new SnapshotJob(VM, "hv1", "p", Trigger.schedule("p"), List.of(), firing));
            }
            VmDefinition def = point.definition().orElseThrow();
            assertThat(def.source()).isEqualTo(VmDefinition.LIBVIRT);
            assertThat(def.machine()).startsWith("pc-q35-");
            assertThat(def.memoryBytes()).isEqualTo(256L << 20);
            assertThat(def.disks()).singleElement().satisfies(d -> {
                assertThat(d.name()).isEqualTo("vda");
                assertThat(d.serial()).contains("WEB1-DATA");
            });
            assertThat(def.nics()).singleElement().satisfies(n -> assertThat(n.mac())
                    .isEqualTo(MAC));
            assertThat(new String(ManifestCodec.encode(point), StandardCharsets.UTF_8))
                    .doesNotContain("s3cr3tvn");
            source.virsh("destroy", VM); // the source site is lost

            Path work = dir.resolve("dr");
            Path planFile = dir.resolve("plan.yaml");
            Files.writeString(
                    planFile,
                    """
                    site: dr-lv
                    source: offsite
                    work-dir: %s
                    dr-host:
                      hypervisor: libvirt
                      uri: "%s"
                      networks: {prod: dr-net}
                    groups:
                      - name: apps
                        vms:
                          - {name: %s, memory: 320, cpus: 2}
                    """
                            .formatted(work, dr.uri(), VM));
            RecoveryPlan plan = new RecoveryPlanParser().parseFile(planFile);
            DrSite site = DrSite.of(plan);
            try (FileObjectTarget target = new FileObjectTarget(repoDir);
                    DrHypervisor host = DrHypervisor.of(plan, site)) {
                Repository repo = Repository.open(target);
                Failover failover = new Failover(repo, site, host, 4, Clock.systemUTC(), RecoveryProgress.NONE);
                Map<String, Manifest> points = failover.points(plan);
                assertThat(points.get(VM).id()).isEqualTo(point.id());

                Failover.DryRun dry = failover.dryRun(plan, points);
                assertThat(dry.ok()).as("%s", dry.problems()).isTrue();
                assertThat(dry.vms()).singleElement().satisfies(v -> assertThat(v.adaptations())
                        .anySatisfy(a -> assertThat(a).contains("runs under TCG")));
                assertThat(dr.virsh("list", "--all", "--name").strip())
                        .as("the dry run defines nothing")
                        .isEmpty();
                // a point whose VM sat on network 'prod': the plan maps it to dr-net, which the DR host lacks
                Manifest onProd = point.withDefinition(java.util.Optional.of(LibvirtDefinition.of(def.domainXml()
                        .orElseThrow()
                        .replace(
                                "<interface type=\"user\">",
                                "<interface type=\"network\"><source network=\"prod\"/>"))));
                assertThat(host.check(plan.vm(VM).orElseThrow(), onProd))
                        .singleElement()
                        .satisfies(p -> assertThat(p).contains("network 'dr-net' does not exist at the DR host"));

                long t0 = System.nanoTime();
                List<Failover.VmResult> results = failover.run(plan, points, t0);
                awaitReady(site.console(VM), dr);
                Duration rto = Duration.ofNanos(System.nanoTime() - t0);
                System.out.printf(
                        "libvirt failover RTO (until the guest agent answered): %.1f s; running after %.1f s%n",
                        rto.toMillis() / 1000.0,
                        results.get(0).timing().orElseThrow().rto().toMillis() / 1000.0);

                Failover.VmResult r = results.get(0);
                assertThat(r.state()).isEqualTo(Failover.State.STARTED);
                DrHypervisor.Started started = r.started().orElseThrow();
                assertThat(started.accelerator()).isEqualTo("tcg");
                assertThat(started.notes())
                        .anySatisfy(n -> assertThat(n).contains("runs under TCG"))
                        .anySatisfy(n -> assertThat(n).isEqualTo("memory 320 MiB from the plan (captured: 256 MiB)"))
                        .anySatisfy(n -> assertThat(n).isEqualTo("2 vCPU(s) from the plan (captured: 1)"));
                assertThat(sh(dr, "cat /mnt/marker")).isEqualTo("written-before-the-backup\n");
                String xml = dr.virsh("dumpxml", VM);
                assertThat(xml)
                        .contains("type='qemu'")
                        .contains("<mac address='" + MAC + "'/>")
                        .contains("<serial>WEB1-DATA</serial>")
                        .contains(site.disk(VM, "vda").toString())
                        .contains("machine='" + def.machine() + "'")
                        .as("the plan's memory and cpus, not the captured 256 MiB and 1 vCPU")
                        .contains("<memory unit='KiB'>327680</memory>")
                        .contains("<vcpu placement='static'>2</vcpu>")
                        .doesNotContain("s3cr3tvn");
                assertThat(sh(dr, "grep -c ^processor /proc/cpuinfo").strip())
                        .as("vCPUs the guest sees")
                        .isEqualTo("2");
                assertThat(host.status(VM)).contains("running");

                // failback, the same way in reverse: captured through libvirt, with the domain as it ran at DR
                sh(dr, "echo written-at-the-dr-site > /mnt/dr-marker && sync");
                List<String> running = Failback.running(plan, host, java.util.Optional.empty());
                assertThat(running).containsExactly(VM);
                Failback.VmResult back = new Failback(repo, site, 4, Clock.systemUTC(), RecoveryProgress.NONE)
                        .run(plan, running, dir.resolve("home"))
                        .get(0);
                VmDefinition atDr = back.point().definition().orElseThrow();
                assertThat(atDr.source()).isEqualTo(VmDefinition.LIBVIRT);
                assertThat(atDr.nics()).singleElement().satisfies(n -> assertThat(n.mac())
                        .isEqualTo(MAC));
                assertThat(atDr.disks()).singleElement().satisfies(d -> {
                    assertThat(d.serial()).contains("WEB1-DATA");
                    assertThat(d.format()).contains("raw");
                });
                assertThat(atDr.domainXml()).hasValueSatisfying(x -> assertThat(x)
                        .contains(site.disk(VM, "vda").toString()));
                assertThat(back.point().bytesNew())
                        .as("only what changed at the DR site is shipped")
                        .isLessThan(point.sizeBytes() / 4);
                assertThat(dir.resolve("home").resolve(VM).resolve("vda.raw")).isRegularFile();
                host.stop(VM);
                assertThat(host.status(VM)).isEmpty();
            }
        }
    }

    /**
     * Waits for "init: ready" on the console and for the guest agent, through libvirt (libvirt
     * holds the agent's channel of its domains: it is the only client QEMU serves there).
     */
    private static void awaitReady(Path console, Libvirtd libvirtd) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!(Files.exists(console) && Files.readString(console).contains("init: ready"))) {
            assertThat(System.nanoTime()).as("'init: ready' on " + console).isLessThan(deadline);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        while (true) {
            try {
                libvirtd.virsh("qemu-agent-command", VM, "--timeout", "5", "{\"execute\":\"guest-ping\"}");
                return;
            } catch (RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
            }
        }
    }

    /** Runs {@code sh -c script} in the guest through libvirt's agent connection; returns its stdout. */
    private static String sh(Libvirtd libvirtd, String script) throws Exception {
        com.fasterxml.jackson.databind.node.ObjectNode cmd =
                io.tidemark.format.Json.mapper().createObjectNode();
        cmd.put("execute", "guest-exec");
        com.fasterxml.jackson.databind.node.ObjectNode args = cmd.putObject("arguments");
        args.put("path", "/bin/sh").put("capture-output", true);
        args.putArray("arg").add("-c").add(script);
        long pid = io.tidemark.format.Json.mapper()
                .readTree(libvirtd.virsh("qemu-agent-command", VM, "--timeout", "30", cmd.toString()))
                .path("return")
                .path("pid")
                .asLong();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            com.fasterxml.jackson.databind.JsonNode st = io.tidemark.format.Json.mapper()
                    .readTree(libvirtd.virsh(
                            "qemu-agent-command",
                            VM,
                            "--timeout",
                            "30",
                            "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":" + pid + "}}"))
                    .path("return");
            if (st.path("exited").asBoolean()) {
                assertThat(st.path("exitcode").asInt(-1))
                        .as("exit of '%s'", script)
                        .isZero();
                return new String(
                        java.util.Base64.getDecoder().decode(st.path("out-data").asText("")), StandardCharsets.UTF_8);
            }
            assertThat(System.nanoTime()).as("'%s' exits", script).isLessThan(deadline);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
    }

    private static void makeDataDisk(Path dir, Path qcow2) {
        Path raw = dir.resolve("vda.raw");
        ExternalCommand.of(List.of("truncate", "-s", "64M", raw.toString())).runForExit();
        ExternalCommand.of(List.of("mkfs.ext4", "-q", "-F", raw.toString())).runForExit();
        ExternalCommand.of(List.of(
                        "qemu-img", "convert", "-O", "qcow2", "-o", "compat=1.1", raw.toString(), qcow2.toString()))
                .runForExit();
    }
}
