package io.tidemark.demo.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.event.ConsistencyPolicy;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.format.Json;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.policies.PolicyParser;
import io.tidemark.recovery.Drill;
import io.tidemark.repository.Repository;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.testkit.RecordingEventBus;
import io.tidemark.testkit.libvirt.Libvirtd;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.guest.TinyGuest;
import io.tidemark.workers.libvirt.LibvirtHypervisor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * DR failover RTO from the operator's command, JVM included (issue 14): {@code --vms} tiny-guest
 * VMs are defined on a source libvirtd (each with its own ext4 data disk, the guest agent's
 * channel and a serial console to a file), backed up by the real worker through libvirt (so each
 * point carries the domain's definition), and their policy promises {@code --rto}. Then {@code
 * tidemark dr failover --json} runs as a process of its own ({@code java -cp <this class path>
 * io.tidemark.cli.Main}, as the launcher runs it) onto a second isolated libvirtd, and each VM is
 * timed from the process's start until its guest answers: "init: ready" on its console and then
 * the guest agent's {@code guest-ping} through libvirt (the readiness {@code LibvirtFailoverIT}
 * uses). The time splits into the JVM's start (until the command's code runs), reading the plan,
 * the config, the repository and the points, the restore and define/start of the domain, and the
 * guest's boot (from the domain's start until its agent answers); its ratio to the policy's RTO
 * is printed.
 *
 * <p>The source domains are started paused (crash-consistent points of a guest that never ran:
 * the DR boot is the first), which saves a TCG boot per VM in the set-up and changes nothing that
 * is measured.
 */
public final class DrRto {

    /** What to run. */
    public record Options(Path dir, int vms, long diskBytes, Duration rto, int memoryMiB) {}

    private static final String POLICY = "dr-bench";

    private final Options options;
    private final Consumer<String> progress;

    public DrRto(Options options, Consumer<String> progress) {
        this.options = options;
        this.progress = progress;
    }

    /** Sets up, runs the failover once, and returns the figures. */
    public ObjectNode run() throws IOException {
        List<Path> kernel = TinyGuest.build();
        Path dir = options.dir();
        Path src = Files.createDirectories(dir.resolve("s"));
        Path repoDir = Files.createDirectories(dir.resolve("repo"));
        List<String> vms = new ArrayList<>();
        for (int i = 1; i <= options.vms(); i++) {
            vms.add("vm-" + i);
        }
        try (Libvirtd source = Libvirtd.start(dir.resolve("lvs"));
                Libvirtd dr = Libvirtd.start(dir.resolve("lvd"))) {
            progress.accept("defining " + vms.size() + " tiny-guest domain(s) at the source, paused");
            for (String vm : vms) {
                Path disk = src.resolve(vm + ".qcow2");
                dataDisk(src.resolve(vm + ".raw"), disk);
                Path xml = src.resolve(vm + ".xml");
                Files.writeString(xml, domain(vm, kernel, disk, src));
                source.virsh("define", xml.toString());
                source.virsh("start", "--paused", vm);
            }
            progress.accept("backing up through libvirt (each point carries the domain's definition)");
            try (FileObjectTarget target = new FileObjectTarget(repoDir);
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
                for (String vm : vms) {
                    worker.backup(
                            POLICY + "/" + vm + "/1",
                            new SnapshotJob(
                                    vm,
                                    "hv1",
                                    POLICY,
                                    Trigger.schedule(POLICY),
                                    List.of(),
                                    Instant.now(),
                                    Optional.of(ConsistencyPolicy.CRASH),
                                    Optional.empty(),
                                    OptionalLong.empty()));
                }
            }
            for (String vm : vms) {
                source.virsh("destroy", vm); // the source site is lost
            }
            Path config = writeConfig(dir, repoDir, vms);
            Duration rto = Drill.rtoLimit(new PolicyParser().loadDirectory(dir.resolve("policies")), vms.get(0))
                    .orElseThrow();
            Path planFile = dir.resolve("plan.yaml");
            Path work = dir.resolve("dr");
            Files.writeString(planFile, plan(work, dr.uri(), vms));

            progress.accept("tidemark dr failover in its own JVM; timing each VM until its guest agent answers");
            Path out = dir.resolve("failover.json");
            Path err = dir.resolve("failover.err");
            List<String> cmd = List.of(
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Xmx1g", // as ./tidemark runs it
                    "-cp",
                    System.getProperty("java.class.path"),
                    "io.tidemark.cli.Main",
                    "dr",
                    "failover",
                    "--config",
                    config.toString(),
                    "--plan",
                    planFile.toString(),
                    "--json");
            String loadBefore = load();
            Map<String, Instant> ready = new ConcurrentHashMap<>();
            ExecutorService watchers = Executors.newFixedThreadPool(vms.size(), r -> {
                Thread t = new Thread(r, "dr-bench-watch");
                t.setDaemon(true);
                return t;
            });
            Instant spawned = Instant.now();
            Process p = new ProcessBuilder(cmd)
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            List<Future<?>> watches = new ArrayList<>();
            for (String vm : vms) {
                Path console = work.resolve("run").resolve(vm + ".console");
                watches.add(watchers.submit(() -> {
                    awaitReady(vm, console, dr, spawned.plus(Duration.ofMinutes(10)));
                    ready.put(vm, Instant.now());
                    return null;
                }));
            }
            int exit;
            try {
                exit = p.waitFor(10, TimeUnit.MINUTES) ? p.exitValue() : -1;
                for (Future<?> w : watches) {
                    w.get(10, TimeUnit.MINUTES);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while timing the failover", e);
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                throw new IllegalStateException(
                        "a DR guest did not answer: " + e.getMessage() + "; see " + work.resolve("run"), e);
            } finally {
                p.destroyForcibly();
                watchers.shutdownNow();
            }
            String loadAfter = load();
            if (exit != 0) {
                throw new IllegalStateException("tidemark dr failover exited " + exit + ": " + Files.readString(err));
            }
            JsonNode result = Json.mapper().readTree(out.toFile());
            for (String vm : vms) {
                dr.virsh("destroy", vm);
            }
            return figures(result, spawned, ready, rto, loadBefore, loadAfter);
        }
    }

    private ObjectNode figures(
            JsonNode result,
            Instant spawned,
            Map<String, Instant> ready,
            Duration rto,
            String loadBefore,
            String loadAfter) {
        Instant jvm = Instant.parse(result.path("jvmStartedAt").asText());
        Instant command = Instant.parse(result.path("commandStartedAt").asText());
        Instant restore = Instant.parse(result.path("restoreStartedAt").asText());
        ObjectNode f = Json.mapper().createObjectNode();
        f.put("vms", options.vms());
        f.put("diskBytes", options.diskBytes());
        f.put("rtoLimitSeconds", rto.toMillis() / 1000.0);
        f.put("loadBefore", loadBefore);
        f.put("loadAfter", loadAfter);
        f.put("jvmStartSeconds", seconds(spawned, command));
        f.put("jvmReportedStartAfterSpawnSeconds", seconds(spawned, jvm));
        f.put("configRepositoryPointsSeconds", seconds(command, restore));
        ArrayNode per = f.putArray("perVm");
        for (JsonNode v : result.path("vms")) {
            String vm = v.path("vm").asText();
            Instant launched = Instant.parse(v.path("launchedAt").asText());
            Instant running = Instant.parse(v.path("runningAt").asText());
            Instant up = ready.get(vm);
            ObjectNode o = per.addObject();
            o.put("vm", vm);
            o.put("accelerator", v.path("accelerator").asText());
            o.put("rtoSeconds", seconds(spawned, up));
            o.put("jvmAndConfigSeconds", seconds(spawned, restore));
            o.put("restoreAndDefineSeconds", seconds(restore, launched));
            o.put("bootSeconds", seconds(launched, up));
            o.put("launchedUntilReportedRunningSeconds", seconds(launched, running));
            o.put("failoverRtoSeconds", v.path("rtoSeconds").asDouble());
            o.put(
                    "failoverRtoFromCommandStartSeconds",
                    v.path("rtoFromCommandStartSeconds").asDouble());
            o.put("ratioToPolicyRto", Duration.between(spawned, up).toMillis() / (double) rto.toMillis());
        }
        return f;
    }

    private static double seconds(Instant from, Instant to) {
        return Duration.between(from, to).toMillis() / 1000.0;
    }

    private static String load() throws IOException {
        return Files.readString(Path.of("/proc/loadavg")).strip();
    }

    private Path writeConfig(Path dir, Path repoDir, List<String> vms) throws IOException {
        Path policies = Files.createDirectories(dir.resolve("policies"));
        Files.writeString(
                policies.resolve(POLICY + ".yaml"),
                "name: " + POLICY + "\nvms: {names: [" + String.join(", ", vms) + "]}\nschedule: {interval: 1h}\n"
                        + "rpo: 1h\nrto: " + options.rto().toSeconds() + "s\n");
        Path config = dir.resolve("engine.yaml");
        Files.writeString(
                config,
                "data: " + dir.resolve("data") + "\npolicies: " + policies + "\ntargets:\n  offsite:\n    type: file\n"
                        + "    path: " + repoDir + "\n");
        return config;
    }

    /** The plan: one group of every VM, on the DR libvirtd, memory and CPUs left to the captured definition. */
    private static String plan(Path work, String uri, List<String> vms) {
        StringBuilder s = new StringBuilder("site: dr-bench\nsource: offsite\nwork-dir: " + work
                + "\ndr-host:\n  hypervisor: libvirt\n  uri: \"" + uri + "\"\ngroups:\n  - name: all\n    vms:\n");
        for (String vm : vms) {
            s.append("      - {name: ").append(vm).append("}\n");
        }
        return s.toString();
    }

    private String domain(String vm, List<Path> kernel, Path disk, Path src) {
        return """
                <domain type='qemu'>
                  <name>%s</name>
                  <memory unit='MiB'>%d</memory>
                  <vcpu>1</vcpu>
                  <os>
                    <type arch='x86_64' machine='q35'>hvm</type>
                    <kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 panic=-1 quiet</cmdline>
                  </os>
                  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
                  <on_reboot>destroy</on_reboot>
                  <devices>
                    <disk type='file' device='disk'>
                      <driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/>
                    </disk>
                    <serial type='file'><source path='%s'/><target port='0'/></serial>
                    <channel type='unix'>
                      <source mode='bind' path='%s'/><target type='virtio' name='org.qemu.guest_agent.0'/>
                    </channel>
                    <memballoon model='none'/>
                  </devices>
                </domain>
                """
                .formatted(
                        vm,
                        options.memoryMiB(),
                        kernel.get(0),
                        kernel.get(1),
                        disk,
                        src.resolve(vm + ".console"),
                        src.resolve(vm + ".qga"));
    }

    private void dataDisk(Path raw, Path qcow2) {
        ExternalCommand.of(List.of("truncate", "-s", Long.toString(options.diskBytes()), raw.toString()))
                .runForExit();
        ExternalCommand.of(List.of("mkfs.ext4", "-q", "-F", raw.toString())).runForExit();
        ExternalCommand.of(List.of(
                        "qemu-img", "convert", "-O", "qcow2", "-o", "compat=1.1", raw.toString(), qcow2.toString()))
                .runForExit();
        try {
            Files.delete(raw);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** "init: ready" on the console, then the guest agent's answer through libvirt. */
    private static void awaitReady(String vm, Path console, Libvirtd dr, Instant deadline) throws IOException {
        while (!(Files.exists(console)
                && new String(Files.readAllBytes(console), java.nio.charset.StandardCharsets.ISO_8859_1)
                        .contains("init: ready"))) {
            if (Instant.now().isAfter(deadline)) {
                throw new IllegalStateException("no 'init: ready' on " + console);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
        while (true) {
            try {
                dr.virsh("qemu-agent-command", vm, "--timeout", "5", "{\"execute\":\"guest-ping\"}");
                return;
            } catch (RuntimeException e) {
                if (Instant.now().isAfter(deadline)) {
                    throw e;
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
            }
        }
    }
}
