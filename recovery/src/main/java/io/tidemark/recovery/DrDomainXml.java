package io.tidemark.recovery;

import static io.tidemark.workers.libvirt.LibvirtXml.child;
import static io.tidemark.workers.libvirt.LibvirtXml.children;
import static io.tidemark.workers.libvirt.LibvirtXml.escape;
import static io.tidemark.workers.libvirt.LibvirtXml.parse;
import static io.tidemark.workers.libvirt.LibvirtXml.serialize;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.repository.VmDefinition;
import io.tidemark.policies.RecoveryPlan;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * The domain XML a libvirt DR host defines for one VM of a plan: the captured domain XML when the
 * point has one (else a domain built from the captured QMP facts, else from the plan's settings),
 * changed to run at the DR host:
 *
 * <ul>
 *   <li>the domain type is {@code kvm} where the host runs KVM guests, else {@code qemu} (TCG);
 *   <li>each disk of the point reads its restored raw or qcow2 file (dr-host.disks.format); other disks are dropped and CD-ROMs
 *       emptied;
 *   <li>interfaces on a network or bridge are moved to the plan's {@code networks} names; with
 *       {@code macs: new} they lose their MAC so that libvirt makes a new one;
 *   <li>a CPU mode or model and a machine type the host does not offer are replaced by what it
 *       does;
 *   <li>memory and CPUs the plan gives itself ({@link RecoveryPlan.Vm#explicit}) replace the
 *       captured ones; the plan's {@code qemu-args} go to QEMU through {@code <qemu:commandline>};
 *   <li>what belongs to the source host is removed: uuid, live ids and aliases, security labels;
 *       the guest agent's socket and file consoles move under the DR site's run dir.
 * </ul>
 *
 * Every change that matters to the operator is a note.
 */
final class DrDomainXml {

    /** What the DR host offers, read from libvirt's capabilities and domain capabilities. */
    record Host(
            String domainType,
            Optional<String> noKvmReason,
            Set<String> machines,
            boolean hostPassthrough,
            boolean hostModel,
            boolean maximum,
            Set<String> usableModels) {}

    /** The XML to define, the notes for the operator, and the networks and bridges it needs. */
    record Result(String xml, List<String> notes, Set<String> networks, Set<String> bridges) {}

    private DrDomainXml() {}

    static Result build(
            RecoveryPlan.Vm vm, Manifest point, List<Path> disks, RecoveryPlan.DrHost dr, Host host, DrSite site) {
        List<String> notes = new ArrayList<>();
        Optional<VmDefinition> def = point.definition();
        Document doc;
        if (def.flatMap(VmDefinition::domainXml).isPresent()) {
            doc = parse(def.get().domainXml().get(), "the point's domain XML");
        } else if (def.isPresent()) {
            doc = parse(fromFacts(vm, def.get(), disks, dr.disks()), "the domain XML made from the point's definition");
            notes.add("built the domain from what QMP told of " + point.vm() + " ("
                    + def.get().summary() + ")");
        } else {
            doc = parse(fromPlan(vm, disks, dr.disks()), "the domain XML made from the plan");
            notes.add("point " + point.id() + " has no captured definition: started with the plan's settings ("
                    + vm.memoryMiB() + " MiB, " + vm.cpus() + " vCPU, q35, virtio disks, no NIC)");
        }
        Element root = doc.getDocumentElement();
        root.setAttribute("type", host.domainType());
        root.removeAttribute("id");
        if (host.domainType().equals("qemu")) {
            notes.add("runs under TCG (domain type qemu, software emulation), not KVM: "
                    + host.noKvmReason().orElse("the plan asks for it"));
        }
        set(doc, root, "name", vm.name());
        remove(root, "uuid");
        remove(root, "seclabel");
        machine(doc, root, host, notes);
        cpu(doc, root, host, notes);
        if (def.isPresent()) {
            planSettings(doc, root, vm, notes);
        }
        qemuArgs(doc, root, vm, notes);
        Element devices = child(root, "devices");
        if (devices == null) {
            devices = (Element) root.appendChild(doc.createElement("devices"));
        }
        if (def.flatMap(VmDefinition::domainXml).isPresent()) {
            disks(doc, devices, point, disks, dr.disks(), notes);
        }
        Set<String> networks = new LinkedHashSet<>();
        Set<String> bridges = new LinkedHashSet<>();
        interfaces(devices, dr, networks, bridges, notes);
        hostLocal(devices, vm.name(), site);
        removeAliases(root);
        return new Result(serialize(doc), notes, networks, bridges);
    }

    private static void machine(Document doc, Element root, Host host, List<String> notes) {
        Element os = child(root, "os");
        Element type = os == null ? null : child(os, "type");
        if (type == null) {
            return;
        }
        String machine = type.getAttribute("machine");
        if (machine.isEmpty() || host.machines().isEmpty() || host.machines().contains(machine)) {
            return;
        }
        String family = machine.contains("q35") ? "q35" : "pc";
        type.setAttribute("machine", family);
        notes.add("machine type " + machine + " is not offered by the DR host: uses " + family + " (its newest "
                + (family.equals("q35") ? "Q35" : "i440FX") + " version)");
    }

    private static void cpu(Document doc, Element root, Host host, List<String> notes) {
        Element cpu = child(root, "cpu");
        if (cpu == null) {
            return;
        }
        String mode = cpu.getAttribute("mode").isEmpty() ? "custom" : cpu.getAttribute("mode");
        String what;
        boolean ok;
        switch (mode) {
            case "host-passthrough" -> {
                ok = host.hostPassthrough();
                what = "CPU mode host-passthrough";
            }
            case "host-model" -> {
                ok = host.hostModel();
                what = "CPU mode host-model";
            }
            case "maximum" -> {
                ok = host.maximum();
                what = "CPU mode maximum";
            }
            default -> {
                String model = text(child(cpu, "model"));
                ok = model.isEmpty() || host.usableModels().contains(model);
                what = "CPU model " + model;
            }
        }
        if (ok) {
            return;
        }
        Element replacement = doc.createElement("cpu");
        String instead;
        if (host.maximum()) {
            replacement.setAttribute("mode", "maximum");
            replacement.setAttribute("check", "none");
            instead = "mode maximum (every feature the DR host's " + host.domainType() + " domains offer)";
        } else {
            instead = "the hypervisor's default model";
            replacement = null;
        }
        if (replacement == null) {
            root.removeChild(cpu);
        } else {
            root.replaceChild(replacement, cpu);
        }
        notes.add(what + " is not offered by the DR host for " + host.domainType() + " domains: uses " + instead);
    }

    /**
     * The plan's memory and CPUs, where it gives them, over the captured ones: {@code <memory>} and
     * {@code <currentMemory>}; {@code <vcpu>} (without a smaller {@code current} count), per-vCPU
     * {@code <vcpus>} dropped, a CPU topology that no longer adds up flattened to one core per
     * socket; NUMA cells (sized for the old figures) dropped.
     */
    private static void planSettings(Document doc, Element root, RecoveryPlan.Vm vm, List<String> notes) {
        boolean memory = vm.sets(RecoveryPlan.Setting.MEMORY);
        boolean cpus = vm.sets(RecoveryPlan.Setting.CPUS);
        if (memory) {
            String was = describeMemory(child(root, "memory"));
            Element m = child(root, "memory");
            if (m == null) {
                m = (Element) root.insertBefore(doc.createElement("memory"), child(root, "os"));
            }
            m.setAttribute("unit", "MiB");
            m.setTextContent(Integer.toString(vm.memoryMiB()));
            Element current = child(root, "currentMemory");
            if (current != null) {
                current.setAttribute("unit", "MiB");
                current.setTextContent(Integer.toString(vm.memoryMiB()));
            }
            Element max = child(root, "maxMemory");
            if (max != null && bytes(max) < (long) vm.memoryMiB() << 20) {
                root.removeChild(max);
                notes.add("maxMemory (" + describeMemory(max) + ", for memory hot-plug) is below the plan's memory:"
                        + " left out");
            }
            notes.add("memory " + vm.memoryMiB() + " MiB from the plan (captured: " + was + ")");
        }
        if (cpus) {
            Element v = child(root, "vcpu");
            String was = v == null ? "none" : text(v);
            if (v == null) {
                v = (Element) root.insertBefore(doc.createElement("vcpu"), child(root, "os"));
            }
            v.setTextContent(Integer.toString(vm.cpus()));
            v.removeAttribute("current");
            remove(root, "vcpus");
            Element topology = child(child(root, "cpu"), "topology");
            if (topology != null && product(topology) != vm.cpus()) {
                topology.setAttribute("sockets", Integer.toString(vm.cpus()));
                for (String a : List.of("dies", "cores", "threads")) {
                    if (topology.hasAttribute(a) || !a.equals("dies")) {
                        topology.setAttribute(a, "1");
                    }
                }
                notes.add("CPU topology: " + vm.cpus() + " socket(s) of 1 core, 1 thread, to match the plan's cpus");
            }
            notes.add(vm.cpus() + " vCPU(s) from the plan (captured: " + was + ")");
        }
        Element cpu = child(root, "cpu");
        if ((memory || cpus) && child(cpu, "numa") != null) {
            remove(cpu, "numa");
            notes.add("NUMA cells of the captured domain left out: they were sized for its own memory and CPUs");
            Element max = child(root, "maxMemory");
            if (max != null) { // libvirt allows memory hot-plug only with NUMA cells
                root.removeChild(max);
                notes.add("maxMemory (" + describeMemory(max) + ", for memory hot-plug) left out with the NUMA cells");
            }
        }
    }

    private static long bytes(Element memory) {
        long n;
        try {
            n = Long.parseLong(text(memory));
        } catch (NumberFormatException e) {
            return 0;
        }
        String unit = memory.getAttribute("unit").isEmpty() ? "KiB" : memory.getAttribute("unit");
        return switch (unit) {
            case "b", "bytes" -> n;
            case "KB" -> n * 1000;
            case "k", "KiB" -> n << 10;
            case "MB" -> n * 1000_000;
            case "M", "MiB" -> n << 20;
            case "GB" -> n * 1000_000_000;
            case "G", "GiB" -> n << 30;
            case "T", "TiB" -> n << 40;
            default -> 0;
        };
    }

    private static String describeMemory(Element memory) {
        return memory == null ? "none" : (bytes(memory) >> 20) + " MiB";
    }

    private static int product(Element topology) {
        int p = 1;
        for (String a : List.of("sockets", "dies", "cores", "threads")) {
            String v = topology.getAttribute(a);
            p *= v.isEmpty() ? 1 : Integer.parseInt(v);
        }
        return p;
    }

    /** The plan's {@code qemu-args}, appended to QEMU's command line through libvirt's QEMU namespace. */
    private static void qemuArgs(Document doc, Element root, RecoveryPlan.Vm vm, List<String> notes) {
        if (vm.qemuArgs().isEmpty()) {
            return;
        }
        root.setAttribute("xmlns:qemu", QEMU_NS);
        Element cmd = doc.createElement("qemu:commandline");
        for (String a : vm.qemuArgs()) {
            Element arg = doc.createElement("qemu:arg");
            arg.setAttribute("value", a);
            cmd.appendChild(arg);
        }
        root.appendChild(cmd);
        notes.add("the plan's qemu-args (" + String.join(" ", vm.qemuArgs()) + ") go to QEMU through"
                + " <qemu:commandline>; libvirt marks the domain tainted (custom-argv)");
    }

    /** What in the plan's entry for {@code vm} a libvirt DR host cannot carry out. */
    static List<String> planProblems(RecoveryPlan.Vm vm) {
        if (io.tidemark.core.hypervisor.Accelerators.chooses(vm.qemuArgs())) {
            return List.of(vm.name() + ": the plan's qemu-args choose an accelerator, which libvirt chooses itself"
                    + " (the domain type); remove it from qemu-args and set dr-host.accel instead");
        }
        return List.of();
    }

    /** libvirt's namespace for QEMU command-line pass-through. */
    static final String QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0";

    private static void disks(
            Document doc,
            Element devices,
            Manifest point,
            List<Path> files,
            RecoveryPlan.Disks format,
            List<String> notes) {
        List<String> names = point.disks().stream().map(d -> d.name()).toList();
        for (Element d : children(devices, "disk")) {
            String target = attr(child(d, "target"), "dev");
            String device = d.getAttribute("device").isEmpty() ? "disk" : d.getAttribute("device");
            int i = names.indexOf(target);
            if (i < 0) {
                if (device.equals("disk")) {
                    devices.removeChild(d);
                    notes.add("disk " + target + " is not in point " + point.id() + ": left out");
                } else {
                    remove(d, "source");
                    remove(d, "backingStore");
                    d.setAttribute("type", "file");
                }
                continue;
            }
            d.setAttribute("type", format.rbd().isPresent() ? "network" : "file");
            Element driver = child(d, "driver");
            if (driver == null) {
                driver = doc.createElement("driver");
                d.insertBefore(driver, d.getFirstChild());
            }
            driver.setAttribute("name", "qemu");
            driver.setAttribute("type", format.format() == RecoveryPlan.DiskFormat.QCOW2 ? "qcow2" : "raw");
            remove(d, "source");
            remove(d, "backingStore");
            remove(d, "auth");
            Element source = doc.createElement("source");
            if (format.rbd().isPresent()) {
                RecoveryPlan.Rbd rbd = format.rbd().get();
                source.setAttribute("protocol", "rbd");
                source.setAttribute("name", rbdName(files.get(i)));
                Element config = doc.createElement("config");
                config.setAttribute("file", rbd.cephConf().toAbsolutePath().toString());
                source.appendChild(config);
                Element auth = doc.createElement("auth");
                auth.setAttribute("username", rbd.user());
                Element secret = doc.createElement("secret");
                secret.setAttribute("type", "ceph");
                secret.setAttribute("uuid", cephSecret(rbd).toString());
                auth.appendChild(secret);
                source.appendChild(auth);
            } else {
                source.setAttribute("file", files.get(i).toString());
            }
            d.insertBefore(source, driver.getNextSibling());
        }
    }

    private static void interfaces(
            Element devices, RecoveryPlan.DrHost dr, Set<String> networks, Set<String> bridges, List<String> notes) {
        for (Element i : children(devices, "interface")) {
            String type = i.getAttribute("type");
            Element source = child(i, "source");
            String key = type.equals("network") ? "network" : type.equals("bridge") ? "bridge" : "";
            if (!key.isEmpty() && source != null && !source.getAttribute(key).isEmpty()) {
                String from = source.getAttribute(key);
                String to = dr.networks().getOrDefault(from, from);
                source.setAttribute(key, to);
                (key.equals("network") ? networks : bridges).add(to);
                if (!to.equals(from)) {
                    notes.add("interface " + attr(child(i, "mac"), "address") + " moves from " + key + " " + from
                            + " to " + to);
                }
                source.removeAttribute("portid");
                source.removeAttribute("bridge".equals(key) ? "network" : "bridge");
            }
            remove(i, "target");
            if (dr.newMacs()) {
                String mac = attr(child(i, "mac"), "address");
                remove(i, "mac");
                notes.add("interface " + mac + " gets a new MAC address (plan: macs: new)");
            }
        }
    }

    /** Host-local paths of the source host: the agent channel and file consoles move under the run dir. */
    private static void hostLocal(Element devices, String vm, DrSite site) {
        for (Element c : children(devices, "channel")) {
            Element source = child(c, "source");
            String name = attr(child(c, "target"), "name");
            if ("unix".equals(c.getAttribute("type")) && source != null) {
                source.setAttribute(
                        "path",
                        name.equals("org.qemu.guest_agent.0")
                                ? site.agent(vm).toString()
                                : site.runDir()
                                        .resolve(vm + "." + name + ".sock")
                                        .toString());
                source.setAttribute("mode", "bind");
            }
        }
        for (Element g : children(devices, "graphics")) {
            if (!g.getAttribute("socket").isEmpty()) {
                g.setAttribute(
                        "socket",
                        site.runDir().resolve(vm + "." + g.getAttribute("type")).toString());
            }
            for (Element l : children(g, "listen")) {
                if (!l.getAttribute("socket").isEmpty()) {
                    l.setAttribute(
                            "socket",
                            site.runDir()
                                    .resolve(vm + "." + g.getAttribute("type"))
                                    .toString());
                }
            }
        }
        for (String kind : List.of("serial", "console")) {
            for (Element s : children(devices, kind)) {
                Element source = child(s, "source");
                if ("file".equals(s.getAttribute("type")) && source != null) {
                    source.setAttribute("path", site.console(vm).toString());
                }
                if (kind.equals("console") && "file".equals(s.getAttribute("type"))) {
                    devices.removeChild(s); // libvirt derives it from the first serial port
                }
            }
        }
    }

    private static void removeAliases(Element e) {
        for (Element k : new ArrayList<>(children(e))) {
            if (k.getTagName().equals("alias") && !k.getAttribute("name").startsWith("ua-")) {
                e.removeChild(k);
            } else if (k.getTagName().equals("seclabel")) {
                e.removeChild(k);
            } else {
                if (k.getTagName().equals("source")) {
                    k.removeAttribute("index");
                }
                removeAliases(k);
            }
        }
    }

    /** A domain from the facts QMP told: machine, CPUs, memory, disks by bus, NICs by MAC and model. */
    static String fromFacts(RecoveryPlan.Vm vm, VmDefinition d, List<Path> files, RecoveryPlan.Disks format) {
        StringBuilder x = new StringBuilder("<domain type='qemu'><name>")
                .append(escape(vm.name()))
                .append("</name><memory unit='b'>")
                .append(d.memoryBytes())
                .append("</memory><vcpu>")
                .append(d.cpus())
                .append("</vcpu><os><type arch='")
                .append(escape(d.arch()))
                .append("' machine='")
                .append(escape(d.machine()))
                .append("'>hvm</type></os>");
        d.cpuModel().ifPresent(m -> x.append("<cpu mode='custom' match='exact'><model fallback='allow'>")
                .append(escape(m))
                .append("</model></cpu>"));
        x.append("<devices>");
        int scsi = 0;
        int[] next = new int[3]; // vd, sd, hd letters
        for (int i = 0; i < files.size(); i++) {
            VmDefinition.Disk disk = i < d.disks().size() ? d.disks().get(i) : null;
            String bus = disk == null
                    ? "virtio"
                    : switch (disk.bus()) {
                        case "virtio", "scsi", "sata", "ide", "usb" -> disk.bus();
                        default -> "virtio";
                    };
            if (bus.equals("scsi") && scsi++ == 0) {
                x.append("<controller type='scsi' model='virtio-scsi'/>");
            }
            x.append(disk(files.get(i), format, bus, next, disk == null ? Optional.empty() : disk.serial()));
        }
        for (VmDefinition.Nic nic : d.nics()) {
            String model = nic.model().replaceAll("-pci$", "").replace("virtio-net", "virtio");
            x.append("<interface type='user'><mac address='")
                    .append(escape(nic.mac()))
                    .append("'/><model type='")
                    .append(escape(model.isEmpty() ? "virtio" : model.toLowerCase(Locale.ROOT)))
                    .append("'/></interface>");
        }
        x.append("<memballoon model='none'/></devices></domain>");
        return x.toString();
    }

    /** A domain from the plan alone (no captured definition): what the QMP DR site would start. */
    static String fromPlan(RecoveryPlan.Vm vm, List<Path> files, RecoveryPlan.Disks format) {
        StringBuilder x = new StringBuilder("<domain type='qemu'><name>" + escape(vm.name())
                + "</name><memory unit='MiB'>" + vm.memoryMiB() + "</memory><vcpu>" + vm.cpus()
                + "</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>");
        int[] next = new int[3];
        for (Path f : files) {
            x.append(disk(f, format, "virtio", next, Optional.empty()));
        }
        return x.append("<memballoon model='none'/></devices></domain>").toString();
    }

    /**
     * A raw or qcow2 file disk, or an RBD image, on {@code bus}, named vda, vdb, ... (sd*, hd* by
     * bus) in order.
     */
    private static String disk(Path file, RecoveryPlan.Disks format, String bus, int[] next, Optional<String> serial) {
        int k = bus.equals("virtio") ? 0 : bus.equals("ide") ? 2 : 1;
        String dev = (k == 0 ? "vd" : k == 1 ? "sd" : "hd") + (char) ('a' + next[k]++);
        String source;
        if (format.rbd().isPresent()) {
            RecoveryPlan.Rbd rbd = format.rbd().get();
            source = "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='"
                    + escape(rbdName(file)) + "'><config file='"
                    + escape(rbd.cephConf().toAbsolutePath().toString())
                    + "'/><auth username='" + escape(rbd.user()) + "'><secret type='ceph' uuid='" + cephSecret(rbd)
                    + "'/></auth></source>";
        } else {
            source = "<disk type='file' device='disk'><driver name='qemu' type='"
                    + (format.format() == RecoveryPlan.DiskFormat.QCOW2 ? "qcow2" : "raw") + "'/><source file='"
                    + escape(file.toString()) + "'/>";
        }
        return source + "<target dev='" + dev + "' bus='" + bus + "'/>"
                + serial.map(s -> "<serial>" + escape(s) + "</serial>").orElse("") + "</disk>";
    }

    /** {@code POOL/IMAGE} of an RBD disk's name {@code rbd:POOL/IMAGE} ({@link DrSite#disk}). */
    private static String rbdName(Path disk) {
        return disk.toString().substring("rbd:".length());
    }

    /**
     * The uuid of the libvirt secret that holds the cephx key of {@code rbd}'s user: the same for the
     * same user, pool and conf, so a re-run redefines the one secret rather than adding another.
     */
    static java.util.UUID cephSecret(RecoveryPlan.Rbd rbd) {
        return java.util.UUID.nameUUIDFromBytes(("tidemark-dr:" + rbd.user() + "@" + rbd.pool() + ":"
                        + rbd.cephConf().toAbsolutePath())
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    private static void set(Document doc, Element parent, String name, String text) {
        Element e = child(parent, name);
        if (e == null) {
            e = (Element) parent.insertBefore(doc.createElement(name), parent.getFirstChild());
        }
        e.setTextContent(text);
    }

    private static void remove(Element parent, String name) {
        for (Element e : children(parent, name)) {
            parent.removeChild(e);
        }
    }

    private static String text(Element e) {
        return e == null ? "" : e.getTextContent().strip();
    }

    private static String attr(Element e, String name) {
        return e == null ? "" : e.getAttribute(name);
    }
}
