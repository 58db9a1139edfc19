package io.tidemark.recovery;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.hypervisor.Accelerators;
import io.tidemark.core.process.ExternalCommand;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.workers.qmp.QmpClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The files of a DR site under a plan's work dir, and the QEMU processes that run its VMs:
 *
 * <pre>
 * &lt;work-dir&gt;/&lt;vm&gt;/&lt;disk&gt;.raw   restored disks (.qcow2 with dr-host.disks.format: qcow2)
 * &lt;work-dir&gt;/run/&lt;vm&gt;.qmp      QMP socket (one client at a time)
 * &lt;work-dir&gt;/run/&lt;vm&gt;.pid      QEMU's pid file
 * &lt;work-dir&gt;/run/&lt;vm&gt;.log      QEMU's messages
 * </pre>
 *
 * <p>QEMU runs daemonized under KVM where the host can run it and TCG otherwise ({@link
 * Accelerators}; the plan's {@code dr-host.accel} or an {@code -accel} in its {@code qemu-args}
 * decides instead), one {@code scsi-hd} (id = the disk's name) per disk on a virtio-scsi
 * controller, so the VM outlives the command that started it and {@link
 * io.tidemark.workers.qmp.QmpHypervisor} can capture it by its socket for failback. It also holds
 * the files of a libvirt DR site ({@link LibvirtDrSite}): restored disks, consoles and sockets.
 */
public final class DrSite implements DrHypervisor {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(DrSite.class);

    /** The QEMU binary started for each VM. */
    public static final String QEMU = "qemu-system-x86_64";

    /** Unix socket paths longer than this do not fit in sockaddr_un. */
    public static final int MAX_SOCKET_PATH = 107;

    private static final Duration QMP_TIMEOUT = Duration.ofSeconds(10);

    private final Path workDir;
    private final RecoveryPlan.Accel accel;
    private final RecoveryPlan.Disks disks;

    public DrSite(Path workDir) {
        this(workDir, RecoveryPlan.Accel.AUTO);
    }

    /** @param accel the accelerator the plan asks for */
    public DrSite(Path workDir, RecoveryPlan.Accel accel) {
        this(workDir, accel, RecoveryPlan.DiskFormat.RAW);
    }

    /**
     * @param accel the accelerator the plan asks for
     * @param diskFormat how the restored disks are stored: raw or qcow2 files
     */
    public DrSite(Path workDir, RecoveryPlan.Accel accel, RecoveryPlan.DiskFormat diskFormat) {
        this(workDir, accel, RecoveryPlan.Disks.files(diskFormat));
    }

    /**
     * @param accel the accelerator the plan asks for
     * @param disks how the restored disks are stored: raw or qcow2 files, or RBD images
     */
    public DrSite(Path workDir, RecoveryPlan.Accel accel, RecoveryPlan.Disks disks) {
        this.workDir = workDir.toAbsolutePath();
        this.accel = accel;
        this.disks = disks;
    }

    /** The DR site of {@code plan}. */
    public static DrSite of(RecoveryPlan plan) {
        return new DrSite(plan.workDir(), plan.drHost().accel(), plan.drHost().disks());
    }

    /** How the restored disks are stored. */
    public RecoveryPlan.DiskFormat diskFormat() {
        return disks.format();
    }

    /** The RBD image of {@code disk} of {@code vm}: {@code POOL/VM-DISK}. */
    public Optional<String> rbdImage(String vm, String disk) {
        return disks.rbd().map(r -> r.pool() + "/" + vm + "-" + disk);
    }

    /**
     * QEMU's legacy name of the RBD image of {@code disk} of {@code vm} ({@code rbd:POOL/IMAGE:conf=…:id=…}
     * and {@code :keyfile=…} when the plan names a key file): what {@code qemu-img} and {@code
     * qemu-nbd} open. It holds paths, never the key.
     */
    public Optional<String> rbdSpec(String vm, String disk) {
        return disks.rbd()
                .map(r -> "rbd:" + r.pool() + "/" + vm + "-" + disk + ":conf=" + r.cephConf() + ":id=" + r.user()
                        + r.keyFile().map(k -> ":keyfile=" + k).orElse(""));
    }

    /** The plan's RBD settings, when the disks go to Ceph. */
    public Optional<RecoveryPlan.Rbd> rbd() {
        return disks.rbd();
    }

    @Override
    public String describe() {
        return "QEMU processes under " + workDir;
    }

    public Path workDir() {
        return workDir;
    }

    public Path runDir() {
        return workDir.resolve("run");
    }

    /** Where the disks of {@code point} are restored for {@code vm}, in the point's disk order. */
    public List<Path> disks(RecoveryPlan.Vm vm, io.tidemark.core.repository.Manifest point) {
        return point.disks().stream().map(d -> disk(vm.name(), d.name())).toList();
    }

    public Path disk(String vm, String disk) {
        Optional<String> image = rbdImage(vm, disk);
        if (image.isPresent()) { // not a file: its name, for output
            return Path.of("rbd:" + image.get());
        }
        return workDir.resolve(vm).resolve(disk + "." + disks.format().label());
    }

    public Path qmp(String vm) {
        return runDir().resolve(vm + ".qmp");
    }

    /** The guest agent's socket of {@code vm} on a libvirt DR host. */
    public Path agent(String vm) {
        return runDir().resolve(vm + ".qga");
    }

    /** The serial console's file of {@code vm} on a libvirt DR host (when its definition logs to a file). */
    public Path console(String vm) {
        return runDir().resolve(vm + ".console");
    }

    Path pidFile(String vm) {
        return runDir().resolve(vm + ".pid");
    }

    Path log(String vm) {
        return runDir().resolve(vm + ".log");
    }

    /** The pid of the VM's QEMU when its pid file names a live process. */
    public Optional<Long> pid(String vm) {
        try {
            long pid = Long.parseLong(Files.readString(pidFile(vm)).strip());
            return ProcessHandle.of(pid).filter(ProcessHandle::isAlive).map(ProcessHandle::pid);
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
    }

    /** QEMU's run state ({@code running}, {@code paused}, ...) or empty when it does not answer. */
    @Override
    public Optional<String> status(String vm) {
        if (pid(vm).isEmpty() || !Files.exists(qmp(vm))) {
            return Optional.empty();
        }
        try (QmpClient qmp = QmpClient.connect(qmp(vm), QMP_TIMEOUT)) {
            return Optional.of(qmp.execute("query-status").path("status").asText());
        } catch (TidemarkException e) {
            return Optional.empty();
        }
    }

    /** The QEMU command line that runs {@code vm} on {@code disks} with the plan's settings, daemonized. */
    List<String> command(RecoveryPlan.Vm vm, List<String> disks) {
        return command(vm, disks, Optional.empty(), new ArrayList<>());
    }

    /**
     * The QEMU command line that runs {@code vm} on {@code disks}, daemonized: with the captured
     * definition's machine type, CPUs, CPU model and memory, its disks' serials and its NICs (MAC
     * and model, on user-mode networking) when there is one, else the plan's memory and CPUs; memory
     * and CPUs the plan gives itself ({@link RecoveryPlan.Vm#sets}) win over the captured ones, as
     * on a libvirt DR host. What had to change to run here goes to {@code notes}. The plan's {@code
     * qemu-args} come last, so they override.
     */
    List<String> command(
            RecoveryPlan.Vm vm, List<String> disks, Optional<VmDefinition> definition, List<String> notes) {
        String machine = "q35";
        String memory = Integer.toString(vm.memoryMiB());
        String cpus = Integer.toString(vm.cpus());
        List<String> cpu = List.of();
        if (definition.isPresent()) {
            VmDefinition d = definition.get();
            machine = machine(d.machine(), notes);
            long capturedMiB = Math.max(1, d.memoryBytes() >> 20);
            if (vm.sets(RecoveryPlan.Setting.MEMORY) && vm.memoryMiB() != capturedMiB) {
                notes.add("memory " + vm.memoryMiB() + " MiB from the plan (captured: " + capturedMiB + " MiB)");
            } else {
                memory = Long.toString(capturedMiB);
            }
            if (vm.sets(RecoveryPlan.Setting.CPUS) && vm.cpus() != d.cpus()) {
                notes.add(vm.cpus() + " vCPU(s) from the plan (captured: " + d.cpus() + ")");
            } else {
                cpus = Integer.toString(d.cpus());
            }
            String model = d.cpuModel().orElse("");
            if (model.equals("host") || model.equals("host-passthrough")) {
                if (accel == RecoveryPlan.Accel.KVM || Accelerators.whyNoKvm().isEmpty()) {
                    cpu = List.of("-cpu", "host");
                } else {
                    cpu = List.of("-cpu", "max");
                    notes.add("CPU model host needs KVM: uses max (every feature TCG emulates)");
                }
            } else if (model.matches("[A-Za-z0-9._-]+") && !model.equals("host-model") && !model.equals("maximum")) {
                cpu = List.of("-cpu", model);
            } else if (!model.isEmpty()) {
                cpu = List.of("-cpu", "max");
                notes.add("CPU mode " + model + " has no QEMU equivalent here: uses max");
            }
        }
        List<String> cmd = new ArrayList<>(List.of(
                QEMU,
                "-machine",
                machine,
                "-display",
                "none",
                "-nodefaults",
                "-name",
                vm.name(),
                "-m",
                memory,
                "-smp",
                cpus,
                "-device",
                "virtio-scsi-pci,id=scsi0"));
        if (!Accelerators.chooses(vm.qemuArgs())) { // the plan's own -accel wins
            cmd.addAll(3, Accelerators.qemuArgs(accel.name().toLowerCase(java.util.Locale.ROOT)));
        }
        cmd.addAll(cpu);
        for (String d : disks) {
            Optional<String> serial = definition.flatMap(def -> def.disks().stream()
                    .filter(x -> x.name().equals(d))
                    .findFirst()
                    .flatMap(VmDefinition.Disk::serial));
            if (this.disks.rbd().isPresent()) {
                RecoveryPlan.Rbd rbd = this.disks.rbd().get();
                if (rbd.keyFile().isPresent()) {
                    cmd.addAll(List.of(
                            "-object",
                            "secret,id=" + d + "-key,format=base64,file="
                                    + escape(rbd.keyFile().get())));
                }
                cmd.addAll(List.of(
                        "-blockdev",
                        "driver=rbd,pool=" + rbd.pool() + ",image=" + vm.name() + "-" + d + ",conf="
                                + escape(rbd.cephConf()) + ",user=" + rbd.user()
                                + rbd.keyFile()
                                        .map(k -> ",key-secret=" + d + "-key")
                                        .orElse("")
                                + ",node-name=" + d + "-file"));
            } else {
                cmd.addAll(List.of(
                        "-blockdev",
                        "driver=file,filename=" + escape(disk(vm.name(), d)) + ",node-name=" + d + "-file"));
            }
            String format = this.disks.format() == RecoveryPlan.DiskFormat.QCOW2 ? "qcow2" : "raw";
            cmd.addAll(List.of(
                    "-blockdev",
                    "driver=" + format + ",file=" + d + "-file,node-name=" + d + "-disk",
                    "-device",
                    "scsi-hd,drive=" + d + "-disk,id=" + d + ",share-rw=on"
                            + serial.map(x -> ",serial=" + x.replace(",", ",,")).orElse("")));
        }
        if (definition.isPresent()) {
            for (VmDefinition.Nic nic : definition.get().nics()) {
                if (!nic.mac().matches("([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}")) {
                    continue;
                }
                String model = nic.model().isEmpty() || nic.model().equals("virtio")
                        ? "virtio-net-pci"
                        : nic.model().replace(",", "");
                cmd.addAll(List.of("-nic", "user,mac=" + nic.mac() + ",model=" + model));
            }
            if (!definition.get().nics().isEmpty()) {
                notes.add(definition.get().nics().size() + " NIC(s) keep their MAC and model on QEMU user-mode"
                        + " networking; give the VM real networking with the plan's qemu-args");
            }
        }
        cmd.addAll(List.of(
                "-qmp",
                "unix:" + escape(qmp(vm.name())) + ",server=on,wait=off",
                "-pidfile",
                pidFile(vm.name()).toString(),
                "-D",
                log(vm.name()).toString(),
                "-daemonize"));
        cmd.addAll(vm.qemuArgs());
        return cmd;
    }

    private static volatile java.util.Set<String> machines;

    /** {@code wanted} if this QEMU has that machine type, else its family's alias, noted. */
    private static String machine(String wanted, List<String> notes) {
        if (wanted.isEmpty()) {
            return "q35";
        }
        java.util.Set<String> known = machines;
        if (known == null) {
            known = new java.util.HashSet<>();
            try {
                ExternalCommand.Result r = ExternalCommand.of(QEMU, "-machine", "help")
                        .timeout(Duration.ofSeconds(30))
                        .runForExit();
                for (String line : r.stdout().split("\n")) {
                    String[] words = line.strip().split("\\s+");
                    if (words.length > 0 && !words[0].isEmpty()) {
                        known.add(words[0]);
                    }
                }
            } catch (TidemarkException e) { // QEMU missing: the start names it; the family alias is always safe
                log.debug("cannot list QEMU's machine types: {}", e.getMessage());
            }
            machines = known;
        }
        if (known.contains(wanted)) {
            return wanted;
        }
        String family = wanted.contains("q35") ? "q35" : "pc";
        notes.add("machine type " + wanted + " is not offered by this QEMU: uses " + family);
        return family;
    }

    /**
     * Starts {@code vm} daemonized; returns once QEMU has daemonized (its devices are set up).
     *
     * @throws PermanentException with QEMU's own message when it refuses to start
     */
    public void start(RecoveryPlan.Vm vm, List<String> disks) {
        launch(vm, command(vm, disks));
    }

    private void launch(RecoveryPlan.Vm vm, List<String> command) {
        Path out = runDir().resolve(vm.name() + ".start.log");
        try {
            Files.createDirectories(runDir());
            Files.deleteIfExists(qmp(vm.name()));
            Files.deleteIfExists(out);
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot prepare " + runDir() + " to start " + vm.name() + ": " + e.getMessage(), e);
        }
        // the daemon keeps QEMU's stdio: its output goes to a file, not a pipe
        ExternalCommand.Result r = ExternalCommand.of(command)
                .outputFile(out)
                .timeout(Duration.ofMinutes(2))
                .hint("QEMU for " + vm.name() + " did not daemonize; see " + log(vm.name()))
                .ifMissing("install qemu-system-x86")
                .runForExit();
        if (r.exitCode() != 0) {
            throw new PermanentException("QEMU for " + vm.name() + " did not start (exit " + r.exitCode() + "): "
                    + r.stdout().strip() + "; fix the plan's qemu-args or the host, then re-run the failover");
        }
    }

    @Override
    public List<String> check(RecoveryPlan.Vm vm, io.tidemark.core.repository.Manifest point) {
        List<String> problems = new ArrayList<>();
        String socket = qmp(vm.name()).toString();
        if (socket.length() > MAX_SOCKET_PATH) {
            problems.add("the QMP socket path of " + vm.name() + " (" + socket + ") is longer than " + MAX_SOCKET_PATH
                    + " bytes; choose a shorter work-dir");
        }
        if (accel == RecoveryPlan.Accel.KVM && !Accelerators.chooses(vm.qemuArgs())) {
            Accelerators.whyNoKvm()
                    .ifPresent(why -> problems.add("the plan asks for KVM, but " + why + "; set dr-host.accel: auto"));
        }
        return problems;
    }

    @Override
    public List<String> adaptations(RecoveryPlan.Vm vm, io.tidemark.core.repository.Manifest point) {
        List<String> notes = new ArrayList<>();
        command(
                vm,
                point.disks().stream()
                        .map(io.tidemark.core.repository.DiskEntry::name)
                        .toList(),
                point.definition(),
                notes);
        if (point.definition().isEmpty()) {
            notes.add("point " + point.id() + " has no captured definition: would start with the plan's settings");
        }
        if (!Accelerators.chooses(vm.qemuArgs()) && accel != RecoveryPlan.Accel.KVM) {
            Accelerators.whyNoKvm().ifPresent(why -> notes.add("would run under TCG, not KVM: " + why));
        }
        return notes;
    }

    @Override
    public Started start(RecoveryPlan.Vm vm, io.tidemark.core.repository.Manifest point, List<Path> disks) {
        List<String> notes = new ArrayList<>();
        // the same command the dry run's adaptations describe
        launch(
                vm,
                command(
                        vm,
                        point.disks().stream()
                                .map(io.tidemark.core.repository.DiskEntry::name)
                                .toList(),
                        point.definition(),
                        notes));
        if (point.definition().isEmpty()) {
            notes.add("point " + point.id() + " has no captured definition: started with the plan's settings ("
                    + vm.memoryMiB() + " MiB, " + vm.cpus() + " vCPU, q35, disks on virtio-scsi)");
        }
        String running = accelerator(vm.name());
        if (running.equals("tcg") && !Accelerators.chooses(vm.qemuArgs()) && accel != RecoveryPlan.Accel.TCG) {
            notes.add("runs under TCG (software emulation), not KVM: "
                    + Accelerators.whyNoKvm().orElse("KVM did not initialise; see " + log(vm.name())));
        }
        return new Started(running, notes);
    }

    /** {@code kvm} when QEMU runs {@code vm} under KVM ({@code query-kvm}), else {@code tcg}. */
    public String accelerator(String vm) {
        try (QmpClient qmp = QmpClient.connect(qmp(vm), QMP_TIMEOUT)) {
            return qmp.execute("query-kvm").path("enabled").asBoolean() ? "kvm" : "tcg";
        } catch (TidemarkException e) {
            return "unknown";
        }
    }

    /** Waits until QEMU reports {@code running}; lets a VM that waits for {@code cont} go. */
    @Override
    public void awaitRunning(String vm, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            if (pid(vm).isEmpty() && Files.exists(pidFile(vm))) {
                throw new PermanentException("QEMU for " + vm + " exited; see " + log(vm));
            }
            Optional<String> s = status(vm);
            if (s.isPresent()) {
                last = s.get();
                if (last.equals("running")) {
                    return;
                }
                if (last.equals("prelaunch") || last.equals("paused")) {
                    try (QmpClient qmp = QmpClient.connect(qmp(vm), QMP_TIMEOUT)) {
                        qmp.execute("cont");
                    } catch (TidemarkException e) {
                        last = e.getMessage();
                    }
                }
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
        throw new RetriableException(
                "VM " + vm + " is not running after " + timeout + " (last state: " + last + "); see " + log(vm));
    }

    /** Stops the VM's QEMU (quit over QMP, else SIGKILL), if it runs. */
    @Override
    public void stop(String vm) {
        Optional<Long> pid = pid(vm);
        if (pid.isEmpty()) {
            return;
        }
        try (QmpClient qmp = QmpClient.connect(qmp(vm), QMP_TIMEOUT)) {
            qmp.execute("quit");
        } catch (TidemarkException e) {
            ProcessHandle.of(pid.get()).ifPresent(ProcessHandle::destroyForcibly);
        }
        ProcessHandle.of(pid.get())
                .ifPresent(h -> h.onExit().orTimeout(30, TimeUnit.SECONDS).join());
    }

    private static String escape(Path p) {
        return p.toString().replace(",", ",,");
    }
}
