package io.tidemark.policies;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.SequenceNode;

/**
 * Reads {@link RecoveryPlan}s with the same error quality as policies: for any input bytes, either
 * a valid plan or one {@link PolicyException} listing every problem with file, line, column and key
 * path ({@code plan.yaml:7:11: groups[0].vms[1].memory: expected a whole number ...}).
 *
 * <pre>
 * site: dr-east
 * source: offsite              # engine target holding the replicated points
 * work-dir: /srv/tidemark-dr   # disks, sockets and pid files at the DR site
 * home-dir: /srv/vms           # optional: where failback writes the disks at home
 * dr-host:                     # optional; without it the VMs run as QEMU processes under work-dir
 *   hypervisor: libvirt        # libvirt (default) or qmp
 *   uri: qemu:///system        # libvirt's URI (default qemu:///system)
 *   accel: auto                # auto (KVM where the host runs it, else TCG, reported), kvm or tcg
 *   networks: {prod: dr-prod}  # libvirt network or bridge at the source: name at the DR host
 *   macs: keep                 # keep (default) or new
 *   disks: {format: qcow2}     # raw (default: <work-dir>/<vm>/<disk>.raw), qcow2 (.qcow2) or rbd:
 *   # disks: {format: rbd, pool: dr, ceph-conf: /etc/ceph/ceph.conf, user: dr, key-file: /etc/tidemark/dr.key}
 * groups:                      # boot order
 *   - name: data
 *     vms:
 *       - name: db-1
 *         memory: 512          # MiB (default 128; on libvirt, given: overrides the captured definition)
 *         cpus: 2              # default 1 (likewise)
 *         qemu-args: ["-device", "virtio-rng-pci"]
 *       - name: queue-1
 *         consistent-with: [db-1]   # same firing as db-1
 *       - name: orders-1            # continuously protected (ADR 19/22): boots on its DR replica
 *         continuous:
 *           disks:
 *             sd0: {replica: /dr/orders-1-sd0.raw, qmp: /run/dr/orders-1-sd0.qmp, points: /dr/points/orders-1-sd0}
 *   - name: apps
 *     vms:
 *       - name: web-1
 * </pre>
 */
public final class RecoveryPlanParser {

    static final List<String> TOP_KEYS = List.of("site", "source", "work-dir", "home-dir", "dr-host", "groups");
    static final List<String> DR_HOST_KEYS = List.of("hypervisor", "uri", "accel", "networks", "macs", "disks");
    static final List<String> DISKS_KEYS = List.of("format", "pool", "ceph-conf", "user", "key-file");
    static final List<String> GROUP_KEYS = List.of("name", "vms");
    static final List<String> VM_KEYS = List.of("name", "memory", "cpus", "qemu-args", "consistent-with", "continuous");
    static final List<String> CONTINUOUS_KEYS = List.of("disks");
    static final List<String> REPLICA_KEYS = List.of("replica", "qmp", "points");

    /** The default guest memory in MiB. */
    public static final int DEFAULT_MEMORY_MIB = 128;

    private static final Pattern VM_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    /** Reads the plan in {@code file}. */
    public RecoveryPlan parseFile(Path file) {
        byte[] bytes;
        try {
            if (Files.size(file) > PolicyParser.MAX_FILE_BYTES) {
                throw fail(file, "file is larger than " + PolicyParser.MAX_FILE_BYTES + " bytes");
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException | SecurityException e) {
            throw fail(file, "cannot read the plan: " + e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        return parse(file, bytes);
    }

    /** Reads {@code yaml} as the content of plan file {@code file} (only named in problems). */
    public RecoveryPlan parse(Path file, byte[] yaml) {
        Problems problems = new Problems(file);
        if (yaml.length > PolicyParser.MAX_FILE_BYTES) {
            throw fail(file, "file is larger than " + PolicyParser.MAX_FILE_BYTES + " bytes");
        }
        Optional<String> text = PolicyParser.decode(yaml, problems);
        if (text.isPresent() && text.get().isBlank()) {
            problems.add(1, 1, "", "the plan is empty; it needs site, source, work-dir and groups");
            throw new PolicyException(problems.sorted());
        }
        Optional<Node> root = text.flatMap(t -> PolicyParser.compose(t, problems));
        if (root.isEmpty()) {
            throw new PolicyException(problems.sorted());
        }
        if (!(root.get() instanceof MappingNode mapping)) {
            problems.at(
                    root.get(),
                    "",
                    "expected a mapping with site, source, work-dir and groups, got "
                            + MappingReader.describe(root.get()));
            throw new PolicyException(problems.sorted());
        }
        MappingReader top = new MappingReader(mapping, "", problems);
        top.allowOnly(TOP_KEYS);
        top.require("site", "source", "work-dir", "groups");
        Optional<String> site = name(top, "site", "a site name", problems);
        Optional<String> source = name(top, "source", "the name of an engine target", problems);
        Optional<Path> workDir = top.string("work-dir", "a directory").map(Path::of);
        Optional<Path> homeDir = top.string("home-dir", "a directory").map(Path::of);
        RecoveryPlan.DrHost drHost = drHost(top, problems);
        List<Ref> refs = new ArrayList<>();
        List<RecoveryPlan.Group> groups = groups(top, refs, problems);
        checkReferences(groups, refs, problems);
        if (!problems.isEmpty()) {
            throw new PolicyException(problems.sorted());
        }
        return new RecoveryPlan(
                file, site.orElseThrow(), source.orElseThrow(), workDir.orElseThrow(), homeDir, groups, drHost);
    }

    private static RecoveryPlan.DrHost drHost(MappingReader top, Problems problems) {
        Optional<MappingReader> m =
                top.mapping("dr-host", "a mapping with hypervisor, uri, accel, networks, macs, disks");
        if (m.isEmpty()) {
            return RecoveryPlan.DrHost.qmp();
        }
        MappingReader h = m.get();
        h.allowOnly(DR_HOST_KEYS);
        RecoveryPlan.HypervisorKind kind = choice(h, "hypervisor", List.of("libvirt", "qmp"), problems)
                .map(s -> s.equals("qmp") ? RecoveryPlan.HypervisorKind.QMP : RecoveryPlan.HypervisorKind.LIBVIRT)
                .orElse(RecoveryPlan.HypervisorKind.LIBVIRT);
        Optional<String> uri = h.string("uri", "a libvirt URI such as qemu:///system");
        if (uri.isPresent() && kind == RecoveryPlan.HypervisorKind.QMP) {
            problems.at(h.value("uri").orElseThrow(), h.child("uri"), "uri is for hypervisor: libvirt only");
        }
        RecoveryPlan.Accel accel = choice(h, "accel", List.of("auto", "kvm", "tcg"), problems)
                .map(s -> RecoveryPlan.Accel.valueOf(s.toUpperCase(java.util.Locale.ROOT)))
                .orElse(RecoveryPlan.Accel.AUTO);
        java.util.Map<String, String> networks =
                h.stringMap("networks", "a network or bridge name").orElse(java.util.Map.of());
        if (!networks.isEmpty() && kind == RecoveryPlan.HypervisorKind.QMP) {
            problems.at(
                    h.value("networks").orElseThrow(),
                    h.child("networks"),
                    "networks are remapped on hypervisor: libvirt only");
        }
        boolean newMacs = choice(h, "macs", List.of("keep", "new"), problems)
                .map("new"::equals)
                .orElse(false);
        RecoveryPlan.Disks disks = disks(h, kind, problems);
        return new RecoveryPlan.DrHost(
                kind, uri.orElse(RecoveryPlan.DrHost.DEFAULT_URI), accel, networks, newMacs, disks);
    }

    private static RecoveryPlan.Disks disks(MappingReader h, RecoveryPlan.HypervisorKind kind, Problems problems) {
        Optional<MappingReader> m = h.mapping("disks", "a mapping with format");
        if (m.isEmpty()) {
            return RecoveryPlan.Disks.RAW;
        }
        MappingReader d = m.get();
        d.allowOnly(DISKS_KEYS);
        RecoveryPlan.DiskFormat format = choice(d, "format", List.of("raw", "qcow2", "rbd"), problems)
                .map(s -> RecoveryPlan.DiskFormat.valueOf(s.toUpperCase(java.util.Locale.ROOT)))
                .orElse(RecoveryPlan.DiskFormat.RAW);
        Optional<String> pool = name(d, "pool", "a Ceph pool name", problems);
        Optional<Path> conf = d.string("ceph-conf", "the path of a ceph.conf").map(Path::of);
        Optional<String> user = name(d, "user", "a cephx user name without client.", problems);
        Optional<Path> keyFile =
                d.string("key-file", "the path of a file holding the cephx key").map(Path::of);
        if (format != RecoveryPlan.DiskFormat.RBD) {
            for (String key : List.of("pool", "ceph-conf", "user", "key-file")) {
                d.value(key).ifPresent(v -> problems.at(v, d.child(key), key + " is for format: rbd only"));
            }
            return RecoveryPlan.Disks.files(format);
        }
        d.require("pool");
        if (kind == RecoveryPlan.HypervisorKind.LIBVIRT && keyFile.isEmpty()) {
            problems.at(
                    d.value("format").orElseThrow(),
                    d.child("format"),
                    "RBD disks on hypervisor: libvirt need key-file (a file holding only the cephx key, for the"
                            + " libvirt secret the disks authenticate with)");
        }
        return new RecoveryPlan.Disks(
                format,
                Optional.of(new RecoveryPlan.Rbd(
                        pool.orElse("rbd"),
                        conf.orElse(Path.of("/etc/ceph/ceph.conf")),
                        user.orElse("admin"),
                        keyFile)));
    }

    private static Optional<String> choice(MappingReader m, String key, List<String> allowed, Problems problems) {
        Optional<String> s = m.string(key, String.join(" or ", allowed));
        if (s.isPresent() && !allowed.contains(s.get())) {
            problems.at(
                    m.value(key).orElseThrow(),
                    m.child(key),
                    "expected " + String.join(", ", allowed) + ", got " + MappingReader.quote(s.get()));
            return Optional.empty();
        }
        return s;
    }

    private static Optional<String> name(MappingReader m, String key, String expected, Problems problems) {
        Optional<String> s = m.string(key, expected);
        if (s.isPresent() && !NAME.matcher(s.get()).matches()) {
            problems.at(
                    m.value(key).orElseThrow(),
                    m.child(key),
                    "expected letters, digits, '.', '_' and '-', got " + MappingReader.quote(s.get()));
            return Optional.empty();
        }
        return s;
    }

    private static List<MappingReader> items(MappingReader m, String key, String expected, Problems problems) {
        Optional<Node> v = m.value(key);
        if (v.isEmpty()) {
            return List.of();
        }
        if (!(v.get() instanceof SequenceNode seq)) {
            problems.at(
                    v.get(),
                    m.child(key),
                    "expected a list of " + expected + ", got " + MappingReader.describe(v.get()));
            return List.of();
        }
        if (seq.getValue().isEmpty()) {
            problems.at(seq, m.child(key), "the list is empty; give at least one " + expected);
        }
        List<MappingReader> out = new ArrayList<>();
        for (int i = 0; i < seq.getValue().size(); i++) {
            Node n = seq.getValue().get(i);
            String path = m.child(key) + "[" + i + "]";
            if (n instanceof MappingNode mn) {
                out.add(new MappingReader(mn, path, problems));
            } else {
                problems.at(n, path, "expected a mapping (" + expected + "), got " + MappingReader.describe(n));
            }
        }
        return out;
    }

    /** A consistent-with entry, where it was written. */
    private record Ref(String vm, String other, Node at, String path) {}

    private static List<RecoveryPlan.Group> groups(MappingReader top, List<Ref> refs, Problems problems) {
        List<RecoveryPlan.Group> groups = new ArrayList<>();
        Map<String, Node> groupNames = new HashMap<>();
        Map<String, Node> vmNames = new HashMap<>();
        for (MappingReader g : items(top, "groups", "groups with name and vms", problems)) {
            g.allowOnly(GROUP_KEYS);
            g.require("name", "vms");
            Optional<String> name = name(g, "name", "a group name", problems);
            name.ifPresent(
                    n -> unique(n, g.value("name").orElseThrow(), g.child("name"), "group", groupNames, problems));
            List<RecoveryPlan.Vm> vms = new ArrayList<>();
            for (MappingReader v : items(g, "vms", "VMs with at least a name", problems)) {
                v.allowOnly(VM_KEYS);
                v.require("name");
                Optional<String> vm = v.string("name", "a VM name");
                if (vm.isPresent() && !VM_NAME.matcher(vm.get()).matches()) {
                    problems.at(
                            v.value("name").orElseThrow(),
                            v.child("name"),
                            "expected 1-64 letters, digits, '.', '_' and '-' starting with a letter or digit, got "
                                    + MappingReader.quote(vm.get()));
                    vm = Optional.empty();
                }
                if (vm.isPresent()
                        && !unique(vm.get(), v.value("name").orElseThrow(), v.child("name"), "VM", vmNames, problems)) {
                    vm = Optional.empty();
                }
                int memory = positive(v, "memory", DEFAULT_MEMORY_MIB, problems);
                int cpus = positive(v, "cpus", 1, problems);
                List<String> args = v.strings("qemu-args", "QEMU argument").orElse(List.of());
                List<String> with = v.strings("consistent-with", "VM name").orElse(List.of());
                if (vm.isPresent() && !with.isEmpty()) {
                    SequenceNode seq = (SequenceNode) v.value("consistent-with").orElseThrow();
                    for (int i = 0; i < with.size(); i++) {
                        refs.add(new Ref(
                                vm.get(),
                                with.get(i),
                                seq.getValue().get(i),
                                v.child("consistent-with") + "[" + i + "]"));
                    }
                }
                java.util.Set<RecoveryPlan.Setting> explicit = java.util.EnumSet.noneOf(RecoveryPlan.Setting.class);
                if (v.value("memory").isPresent()) {
                    explicit.add(RecoveryPlan.Setting.MEMORY);
                }
                if (v.value("cpus").isPresent()) {
                    explicit.add(RecoveryPlan.Setting.CPUS);
                }
                Optional<RecoveryPlan.Continuous> continuous = continuous(v, problems);
                vm.ifPresent(n -> vms.add(new RecoveryPlan.Vm(n, memory, cpus, args, with, explicit, continuous)));
            }
            name.ifPresent(n -> groups.add(new RecoveryPlan.Group(n, vms)));
        }
        return groups;
    }

    /** A VM's {@code continuous: {disks: {<disk>: {replica, qmp, points}}}}, if it has one. */
    private static Optional<RecoveryPlan.Continuous> continuous(MappingReader v, Problems problems) {
        Optional<MappingReader> c = v.mapping("continuous", "a mapping with disks");
        if (c.isEmpty()) {
            return Optional.empty();
        }
        c.get().allowOnly(CONTINUOUS_KEYS);
        c.get().require("disks");
        Optional<MappingReader> disks = c.get().mapping("disks", "a mapping of disk name to replica");
        if (disks.isEmpty()) {
            return Optional.empty();
        }
        Map<String, RecoveryPlan.ReplicaDisk> out = new java.util.LinkedHashMap<>();
        for (String disk : disks.get().keys()) {
            Optional<MappingReader> d = disks.get().mapping(disk, "a mapping with replica, qmp and points");
            if (d.isEmpty()) {
                continue;
            }
            d.get().allowOnly(REPLICA_KEYS);
            d.get().require("replica");
            Optional<Path> replica = d.get()
                    .string("replica", "the path of the raw replica file")
                    .map(Path::of);
            Optional<Path> qmp =
                    d.get().string("qmp", "the DR daemon's QMP socket").map(Path::of);
            Optional<Path> points = d.get()
                    .string("points", "the directory of the disk's DR points")
                    .map(Path::of);
            if (!NAME.matcher(disk).matches()) {
                problems.at(
                        disks.get().keyNode(disk).orElseThrow(),
                        disks.get().child(disk),
                        "expected a disk name (letters, digits, '.', '_' and '-'), got " + MappingReader.quote(disk));
                continue;
            }
            replica.ifPresent(r -> out.put(disk, new RecoveryPlan.ReplicaDisk(r, qmp, points)));
        }
        if (out.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new RecoveryPlan.Continuous(out));
    }

    private static int positive(MappingReader v, String key, int dflt, Problems problems) {
        Optional<Integer> n = v.count(key);
        if (n.isPresent() && n.get() == 0) {
            problems.at(v.value(key).orElseThrow(), v.child(key), "must be greater than zero");
        }
        return n.orElse(dflt);
    }

    private static boolean unique(
            String name, Node at, String path, String what, Map<String, Node> seen, Problems problems) {
        Node first = seen.putIfAbsent(name, at);
        if (first == null) {
            return true;
        }
        problems.at(
                at,
                path,
                what + " '" + name + "' is already in the plan at line "
                        + (first.getStartMark().getLine() + 1));
        return false;
    }

    /** Every consistent-with name is another VM of the plan. */
    private static void checkReferences(List<RecoveryPlan.Group> groups, List<Ref> refs, Problems problems) {
        List<String> all = groups.stream()
                .flatMap(g -> g.vms().stream())
                .map(RecoveryPlan.Vm::name)
                .toList();
        for (Ref r : refs) {
            if (r.other().equals(r.vm())) {
                problems.at(r.at(), r.path(), "VM '" + r.vm() + "' names itself");
            } else if (!all.contains(r.other())) {
                problems.at(
                        r.at(),
                        r.path(),
                        "'" + r.other() + "' is not a VM of this plan; it has " + String.join(", ", all));
            }
        }
    }

    private static PolicyException fail(Path file, String message) {
        return new PolicyException(List.of(new PolicyProblem(file, 0, 0, "", message)));
    }
}
