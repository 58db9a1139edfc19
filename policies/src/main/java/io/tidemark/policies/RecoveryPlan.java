package io.tidemark.policies;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A disaster-recovery plan: which VMs to bring up at a DR site, from which target, in which order.
 * Read by {@link RecoveryPlanParser}; the language is described in {@code docs/runbooks/dr-failover.md}.
 *
 * @param file the file it was read from, for messages
 * @param site the DR site's name, for output
 * @param source the name of the engine target that holds the replicated restore points
 * @param workDir where the DR site keeps disks ({@code <work-dir>/<vm>/<disk>.raw}) and QEMU's
 *     sockets and pid files ({@code <work-dir>/run/})
 * @param homeDir where failback writes the disks at home, if the plan says
 * @param groups the boot order: every VM of a group runs before the next group starts
 * @param drHost the hypervisor the VMs run on at the DR site
 */
public record RecoveryPlan(
        Path file,
        String site,
        String source,
        Path workDir,
        Optional<Path> homeDir,
        List<Group> groups,
        DrHost drHost) {

    public RecoveryPlan {
        groups = List.copyOf(groups);
        java.util.Objects.requireNonNull(drHost, "drHost");
    }

    /** A plan whose VMs run as QEMU processes under the work dir (no {@code dr-host} in the file). */
    public RecoveryPlan(
            Path file, String site, String source, Path workDir, Optional<Path> homeDir, List<Group> groups) {
        this(file, site, source, workDir, homeDir, groups, DrHost.qmp());
    }

    /** The hypervisor at the DR site. */
    public enum HypervisorKind {
        /** QEMU processes started by Tidemark under the work dir, each with its QMP socket. */
        QMP,
        /** A libvirt daemon (local or remote URI): domains defined from the captured definitions. */
        LIBVIRT
    }

    /** Which accelerator the DR VMs run under. */
    public enum Accel {
        /** KVM where the DR host can run it, otherwise TCG, and the output says which and why. */
        AUTO,
        KVM,
        TCG
    }

    /**
     * The DR site's hypervisor ({@code dr-host} in the plan).
     *
     * @param kind libvirt or QMP
     * @param uri the libvirt URI (libvirt only; default {@code qemu:///system})
     * @param accel KVM, TCG, or the best the host offers
     * @param networks libvirt network or bridge name at the source to the one at the DR host (an
     *     interface whose network is not listed keeps its name, which the DR host must then have)
     * @param newMacs whether the DR VMs get new MAC addresses (default: they keep theirs)
     * @param disks how the DR site stores the restored disks ({@code disks.format}; default raw files)
     */
    public record DrHost(
            HypervisorKind kind,
            String uri,
            Accel accel,
            java.util.Map<String, String> networks,
            boolean newMacs,
            Disks disks) {

        public static final String DEFAULT_URI = "qemu:///system";

        public DrHost {
            networks = java.util.Map.copyOf(networks);
            java.util.Objects.requireNonNull(disks, "disks");
        }

        /** A DR host whose disks are raw files. */
        public DrHost(
                HypervisorKind kind, String uri, Accel accel, java.util.Map<String, String> networks, boolean newMacs) {
            this(kind, uri, accel, networks, newMacs, Disks.RAW);
        }

        /** Today's default: QEMU processes under the work dir, the best accelerator, raw disks. */
        public static DrHost qmp() {
            return new DrHost(HypervisorKind.QMP, "", Accel.AUTO, java.util.Map.of(), false);
        }
    }

    /**
     * How the DR site stores the restored disks ({@code dr-host.disks}).
     *
     * @param format raw or qcow2 files under the work dir, or Ceph RBD images
     * @param rbd where the RBD images go (RBD only)
     */
    public record Disks(DiskFormat format, Optional<Rbd> rbd) {

        /** Raw files under the work dir: the default. */
        public static final Disks RAW = new Disks(DiskFormat.RAW, Optional.empty());

        /** Files of {@code format} (raw or qcow2) under the work dir. */
        public static Disks files(DiskFormat format) {
            return new Disks(format, Optional.empty());
        }

        public Disks {
            if ((format == DiskFormat.RBD) != rbd.isPresent()) {
                throw new IllegalArgumentException("RBD settings go with format rbd only");
            }
        }
    }

    /**
     * The Ceph pool the DR disks are written to, as image {@code <vm>-<disk>}.
     *
     * @param pool the pool
     * @param cephConf the {@code ceph.conf} naming the monitors
     * @param user the cephx user, without {@code client.}
     * @param keyFile a file holding only the user's key (base64, as {@code ceph auth get-key} prints
     *     it); without it the keyring named in {@code cephConf} is used. The key is never in the plan.
     */
    public record Rbd(String pool, Path cephConf, String user, Optional<Path> keyFile) {}

    /** How the DR site stores each restored disk ({@code dr-host.disks.format}). */
    public enum DiskFormat {
        /** A sparse raw file {@code <work-dir>/<vm>/<disk>.raw}: today's default. */
        RAW("raw"),
        /** A qcow2 file {@code <work-dir>/<vm>/<disk>.qcow2}, written through {@code qemu-nbd}. */
        QCOW2("qcow2"),
        /** A Ceph RBD image {@code <pool>/<vm>-<disk>} holding raw data, written through {@code qemu-nbd}. */
        RBD("rbd");

        private final String label;

        DiskFormat(String label) {
            this.label = label;
        }

        /** QEMU's and libvirt's name of the format, also the file's extension. */
        public String label() {
            return label;
        }
    }

    /** One boot step: its VMs are restored and started in parallel. */
    public record Group(String name, List<Vm> vms) {
        public Group {
            vms = List.copyOf(vms);
        }
    }

    /** A VM setting a plan may give explicitly, which then overrides a captured definition on libvirt. */
    public enum Setting {
        MEMORY,
        CPUS
    }

    /**
     * One VM of the plan.
     *
     * @param memoryMiB guest memory (the plan's, or the default)
     * @param cpus virtual CPUs (the plan's, or the default)
     * @param qemuArgs extra arguments appended to QEMU's command line
     * @param consistentWith VMs whose restore points must come from the same firing as this one's
     * @param explicit the settings the plan gives itself, rather than leaving to their defaults: on a
     *     libvirt DR host they override the point's captured definition, the others leave it as it is
     */
    public record Vm(
            String name,
            int memoryMiB,
            int cpus,
            List<String> qemuArgs,
            List<String> consistentWith,
            java.util.Set<Setting> explicit,
            Optional<Continuous> continuous) {
        public Vm {
            qemuArgs = List.copyOf(qemuArgs);
            consistentWith = List.copyOf(consistentWith);
            explicit = java.util.Set.copyOf(explicit);
            java.util.Objects.requireNonNull(continuous, "continuous");
        }

        /** A VM that comes back from restore points (not continuously protected). */
        public Vm(
                String name,
                int memoryMiB,
                int cpus,
                List<String> qemuArgs,
                List<String> consistentWith,
                java.util.Set<Setting> explicit) {
            this(name, memoryMiB, cpus, qemuArgs, consistentWith, explicit, Optional.empty());
        }

        /** Whether the VM comes back from its DR replica (continuous protection, ADR 19/22). */
        public boolean isContinuous() {
            return continuous.isPresent();
        }

        /** A VM whose memory and CPUs the plan gives itself. */
        public Vm(String name, int memoryMiB, int cpus, List<String> qemuArgs, List<String> consistentWith) {
            this(name, memoryMiB, cpus, qemuArgs, consistentWith, java.util.EnumSet.allOf(Setting.class));
        }

        /** Whether the plan gives {@code s} itself. */
        public boolean sets(Setting s) {
            return explicit.contains(s);
        }
    }

    /**
     * Where the DR replicas of a continuously protected VM are ({@code continuous} of a plan's VM;
     * ADR 22): the failover boots on them (or on a DR point of them) instead of restoring a point.
     *
     * @param disks per disk (guest device id, in the VM's disk order): its replica and DR daemon
     */
    public record Continuous(java.util.Map<String, ReplicaDisk> disks) {
        public Continuous {
            disks = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(disks));
        }
    }

    /**
     * One disk's DR replica.
     *
     * @param replica the raw replica file the DR daemon serves (ADR 19 §1)
     * @param drQmp the DR daemon's QMP socket: when given, the failover deletes the replica's NBD
     *     export and nodes there, so no mirrored write lands after the cut and QEMU can open the file
     * @param points the directory of the disk's DR points ({@code <id>.qcow2} and {@code <id>.json})
     */
    public record ReplicaDisk(Path replica, Optional<Path> drQmp, Optional<Path> points) {}

    /** Every VM of the plan, in boot order. */
    public List<Vm> vms() {
        return groups.stream().flatMap(g -> g.vms().stream()).toList();
    }

    /** The VM called {@code name}. */
    public Optional<Vm> vm(String name) {
        return vms().stream().filter(v -> v.name().equals(name)).findFirst();
    }
}
