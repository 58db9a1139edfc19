package io.tidemark.recovery;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.repository.Manifest;
import io.tidemark.policies.RecoveryPlan;
import io.tidemark.workers.libvirt.LibvirtXml;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.libvirt.Connect;
import org.libvirt.Domain;
import org.libvirt.DomainInfo;
import org.libvirt.Error.ErrorNumber;
import org.libvirt.LibvirtException;
import org.libvirt.jna.ConnectionPointer;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * A libvirt DR host ({@code dr-host: {hypervisor: libvirt, uri: ...}}): each VM is defined from its
 * point's captured definition, adapted to the host ({@link DrDomainXml}), on its restored disks
 * (files under the plan's work dir, as on the QMP site), and started. The domain type is {@code
 * kvm} where the host runs KVM guests (libvirt offers the kvm domain type and its CPU has vmx or
 * svm), else {@code qemu} (TCG), which the output reports; {@code dr-host.accel} may force either.
 * What the host offers comes from libvirt's capabilities and domain capabilities (the latter
 * through JNA: the Java binding 0.5.4 lacks {@code virConnectGetDomainCapabilities}).
 */
public final class LibvirtDrSite implements DrHypervisor {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(LibvirtDrSite.class);

    private final RecoveryPlan.DrHost spec;
    private final DrSite files;
    private Connect connection; // guarded by this
    private DrDomainXml.Host host; // guarded by this

    LibvirtDrSite(RecoveryPlan.DrHost spec, DrSite files) {
        this.spec = spec;
        this.files = files;
    }

    @Override
    public String describe() {
        return "libvirt " + spec.uri();
    }

    /** libvirt's C call the binding lacks. */
    private interface Virt extends Library {
        Pointer virConnectGetDomainCapabilities(
                ConnectionPointer conn, String emulatorbin, String arch, String machine, String virttype, int flags);
    }

    /** A connection whose native pointer the domain-capabilities call can use. */
    private static final class DrConnect extends Connect {
        DrConnect(String uri) throws LibvirtException {
            super(uri, false);
        }

        String domainCapabilities(String virttype, String machine) throws LibvirtException {
            Virt virt = Native.load("virt", Virt.class);
            Pointer p = virt.virConnectGetDomainCapabilities(vcp, null, "x86_64", machine, virttype, 0);
            if (p == null) {
                throw new PermanentException("libvirt " + getURI() + " gave no domain capabilities for " + virttype
                        + " domains" + (machine == null ? "" : " of machine " + machine));
            }
            try {
                return p.getString(0, "UTF-8");
            } finally {
                Native.free(Pointer.nativeValue(p));
            }
        }
    }

    private synchronized Connect connection() {
        if (connection == null) {
            // "Domain not found" while checking what runs is an answer, not an error for stderr
            io.tidemark.workers.libvirt.LibvirtHypervisor.silenceDefaultErrorHandler();
            try {
                connection = new DrConnect(spec.uri());
            } catch (LibvirtException e) {
                throw new RetriableException(
                        "cannot connect to the DR host's libvirt at " + spec.uri() + ": " + e.getMessage()
                                + "; check dr-host.uri and that libvirtd runs there",
                        e);
            }
        }
        return connection;
    }

    /** What the DR host offers, asked once. */
    synchronized DrDomainXml.Host host() {
        if (host != null) {
            return host;
        }
        DrConnect c = (DrConnect) connection();
        try {
            Document caps = LibvirtXml.parse(c.getCapabilities(), "libvirt's capabilities");
            Set<String> machines = new LinkedHashSet<>();
            boolean kvmOffered = false;
            Set<String> features = new LinkedHashSet<>();
            Element hostEl = LibvirtXml.child(caps.getDocumentElement(), "host");
            Element cpu = LibvirtXml.child(hostEl, "cpu");
            for (Element f : LibvirtXml.children(cpu, "feature")) {
                features.add(f.getAttribute("name"));
            }
            for (Element guest : LibvirtXml.children(caps.getDocumentElement(), "guest")) {
                Element arch = LibvirtXml.child(guest, "arch");
                if (arch == null || !"x86_64".equals(arch.getAttribute("name"))) {
                    continue;
                }
                for (Element m : LibvirtXml.children(arch, "machine")) {
                    machines.add(m.getTextContent().strip());
                }
                for (Element d : LibvirtXml.children(arch, "domain")) {
                    kvmOffered |= "kvm".equals(d.getAttribute("type"));
                    for (Element m : LibvirtXml.children(d, "machine")) {
                        machines.add(m.getTextContent().strip());
                    }
                }
            }
            Optional<String> noKvm;
            if (!kvmOffered) {
                noKvm = Optional.of("libvirt at " + spec.uri() + " offers no kvm domain type (no /dev/kvm there)");
            } else if (!features.contains("vmx") && !features.contains("svm")) {
                noKvm = Optional.of("the DR host's CPU has no vmx/svm feature (a nested VM without nested"
                        + " virtualisation): KVM guests would not run");
            } else {
                noKvm = Optional.empty();
            }
            String type =
                    switch (spec.accel()) {
                        case KVM -> "kvm";
                        case TCG -> "qemu";
                        case AUTO -> noKvm.isEmpty() ? "kvm" : "qemu";
                    };
            if (spec.accel() == RecoveryPlan.Accel.TCG) {
                noKvm = Optional.of("the plan asks for TCG (dr-host.accel: tcg)");
            }
            Document dc = LibvirtXml.parse(c.domainCapabilities(type, null), "libvirt's domain capabilities");
            Element cpuCaps = LibvirtXml.child(dc.getDocumentElement(), "cpu");
            boolean passthrough = false;
            boolean hostModel = false;
            boolean maximum = false;
            Set<String> usable = new LinkedHashSet<>();
            for (Element mode : LibvirtXml.children(cpuCaps, "mode")) {
                boolean yes = "yes".equals(mode.getAttribute("supported"));
                switch (mode.getAttribute("name")) {
                    case "host-passthrough" -> passthrough = yes;
                    case "host-model" -> hostModel = yes;
                    case "maximum" -> maximum = yes;
                    case "custom" -> {
                        for (Element m : LibvirtXml.children(mode, "model")) {
                            if (!"no".equals(m.getAttribute("usable"))) {
                                usable.add(m.getTextContent().strip());
                            }
                        }
                    }
                    default -> {}
                }
            }
            host = new DrDomainXml.Host(type, noKvm, machines, passthrough, hostModel, maximum, usable);
            return host;
        } catch (LibvirtException e) {
            throw new RetriableException(
                    "cannot read the capabilities of libvirt at " + spec.uri() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public Optional<String> status(String vm) {
        try {
            Domain d = lookup(vm);
            if (d == null || d.isActive() != 1) {
                return Optional.empty();
            }
            return Optional.of(d.getInfo().state == DomainInfo.DomainState.VIR_DOMAIN_PAUSED ? "paused" : "running");
        } catch (LibvirtException e) {
            throw new RetriableException(
                    "cannot ask libvirt at " + spec.uri() + " about " + vm + ": " + e.getMessage(), e);
        }
    }

    private Domain lookup(String vm) throws LibvirtException {
        try {
            return connection().domainLookupByName(vm);
        } catch (LibvirtException e) {
            if (e.getError() != null && e.getError().getCode() == ErrorNumber.VIR_ERR_NO_DOMAIN) {
                return null;
            }
            throw e;
        }
    }

    @Override
    public List<String> check(RecoveryPlan.Vm vm, Manifest point) {
        List<String> problems = new ArrayList<>();
        if (point == null) {
            return problems;
        }
        problems.addAll(DrDomainXml.planProblems(vm));
        DrDomainXml.Host h = host();
        if (spec.accel() == RecoveryPlan.Accel.KVM && h.noKvmReason().isPresent()) {
            problems.add(vm.name() + ": the plan asks for KVM, but "
                    + h.noKvmReason().get() + "; set dr-host.accel: auto to fall back to TCG");
        }
        DrDomainXml.Result r = DrDomainXml.build(vm, point, files.disks(vm, point), spec, h, files);
        for (String n : r.networks()) {
            if (!hasNetwork(n)) {
                problems.add(vm.name() + ": network '" + n + "' does not exist at the DR host (libvirt " + spec.uri()
                        + "); define it there, or map it with dr-host.networks in the plan");
            }
        }
        for (String b : r.bridges()) {
            if (isLocal() && !Files.exists(Path.of("/sys/class/net", b))) {
                problems.add(vm.name() + ": bridge '" + b + "' does not exist at the DR host; create it, or map it"
                        + " with dr-host.networks in the plan");
            }
        }
        return problems;
    }

    @Override
    public List<String> adaptations(RecoveryPlan.Vm vm, Manifest point) {
        return DrDomainXml.build(vm, point, files.disks(vm, point), spec, host(), files)
                .notes();
    }

    private boolean hasNetwork(String name) {
        try {
            return connection().networkLookupByName(name) != null;
        } catch (LibvirtException e) {
            return false;
        }
    }

    private boolean isLocal() {
        return spec.uri().matches("[a-z+]+:///.*");
    }

    @Override
    public Started start(RecoveryPlan.Vm vm, Manifest point, List<Path> disks) {
        DrDomainXml.Host h = host();
        DrDomainXml.Result r = DrDomainXml.build(vm, point, disks, spec, h, files);
        try {
            Files.createDirectories(files.runDir());
            Files.deleteIfExists(files.agent(vm.name()));
        } catch (IOException e) {
            throw new PermanentException("cannot prepare " + files.runDir() + " for " + vm.name() + ": " + e, e);
        }
        spec.disks().rbd().ifPresent(this::defineCephSecret);
        try {
            Files.writeString(files.runDir().resolve(vm.name() + ".xml"), r.xml());
            Domain d = connection().domainDefineXML(r.xml());
            d.create();
        } catch (IOException e) {
            throw new PermanentException("cannot write " + files.runDir() + "/" + vm.name() + ".xml: " + e, e);
        } catch (LibvirtException e) {
            throw new PermanentException(
                    "libvirt at " + spec.uri() + " refused to define or start " + vm.name() + ": " + e.getMessage()
                            + "; the domain XML is in " + files.runDir().resolve(vm.name() + ".xml"),
                    e);
        }
        return new Started(h.domainType().equals("kvm") ? "kvm" : "tcg", r.notes());
    }

    /**
     * Defines (or redefines) the ephemeral, private libvirt secret that the RBD disks' {@code <auth>}
     * names, with the key read from the plan's key file: kept in libvirtd's memory only, never
     * readable back through libvirt, never written to the domain XML or a log.
     */
    private synchronized void defineCephSecret(RecoveryPlan.Rbd rbd) {
        Path keyFile = rbd.keyFile()
                .orElseThrow(() -> new PermanentException(
                        "RBD disks on a libvirt DR host need dr-host.disks.key-file (the cephx key of client."
                                + rbd.user() + ")"));
        byte[] key;
        try {
            key = java.util.Base64.getDecoder().decode(Files.readString(keyFile).strip());
        } catch (IOException e) {
            throw new PermanentException(
                    "cannot read the cephx key file " + keyFile + ": " + e.getMessage()
                            + "; check dr-host.disks.key-file",
                    e);
        } catch (IllegalArgumentException e) {
            throw new PermanentException(
                    "the cephx key file " + keyFile + " does not hold a base64 key; write it with"
                            + " `ceph auth get-key client." + rbd.user() + " -o " + keyFile + "`",
                    e);
        }
        String uuid = DrDomainXml.cephSecret(rbd).toString();
        String xml = "<secret ephemeral='yes' private='yes'><uuid>" + uuid + "</uuid><description>tidemark DR: cephx"
                + " key of client." + rbd.user() + " for pool " + rbd.pool() + "</description><usage type='ceph'>"
                + "<name>tidemark-dr " + uuid + "</name></usage></secret>";
        try {
            connection().secretDefineXML(xml).setValue(key);
        } catch (LibvirtException e) {
            throw new PermanentException(
                    "libvirt at " + spec.uri() + " refused the secret for the cephx key of client." + rbd.user() + ": "
                            + e.getMessage(),
                    e);
        } finally {
            java.util.Arrays.fill(key, (byte) 0);
        }
    }

    @Override
    public void awaitRunning(String vm, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (status(vm).filter("running"::equals).isPresent()) {
                return;
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
        }
        throw new RetriableException("domain " + vm + " is not running at libvirt " + spec.uri() + " after " + timeout
                + "; see its log there (/var/log/libvirt/qemu/" + vm + ".log)");
    }

    @Override
    public void stop(String vm) {
        try {
            Domain d = lookup(vm);
            if (d != null && d.isActive() == 1) {
                d.destroy();
            }
        } catch (LibvirtException e) {
            throw new RetriableException("cannot stop " + vm + " at libvirt " + spec.uri() + ": " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized void close() {
        if (connection != null) {
            try {
                connection.close();
            } catch (LibvirtException e) {
                log.debug("closing the connection to {} failed: {}", spec.uri(), e.getMessage());
            }
            connection = null;
        }
    }
}
