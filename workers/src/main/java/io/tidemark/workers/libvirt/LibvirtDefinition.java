package io.tidemark.workers.libvirt;

import static io.tidemark.workers.libvirt.LibvirtXml.child;
import static io.tidemark.workers.libvirt.LibvirtXml.children;
import static io.tidemark.workers.libvirt.LibvirtXml.parse;
import static io.tidemark.workers.libvirt.LibvirtXml.serialize;

import io.tidemark.core.repository.VmDefinition;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.w3c.dom.Attr;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

/**
 * A libvirt domain's XML as a {@link VmDefinition}: the summary facts read from it, and the XML
 * itself with every secret removed (invariant: no secret in a manifest).
 *
 * <p>What is removed, wherever it appears: attributes named {@code passwd} or {@code password}
 * (VNC/SPICE graphics passwords; libvirt omits them unless asked for secure XML, but a domain
 * defined by hand may carry them), {@code <auth>} elements (iSCSI CHAP and Ceph RBD
 * credentials: user names and secret references), {@code <secret>} elements (LUKS encryption
 * secrets), and QEMU pass-through arguments ({@code <qemu:commandline>}, which may carry
 * {@code -object secret,data=...}). {@link VmDefinition#redacted()} names each removal.
 */
public final class LibvirtDefinition {

    private static final Set<String> SECRET_ATTRIBUTES = Set.of("passwd", "password");
    private static final Set<String> SECRET_ELEMENTS = Set.of("auth", "secret", "qemu:commandline");

    private LibvirtDefinition() {}

    /** The definition of the domain whose XML is {@code domainXml}, secrets removed. */
    public static VmDefinition of(String domainXml) {
        Document doc = parse(domainXml, "libvirt's domain XML");
        Element root = doc.getDocumentElement();
        List<String> redacted = new ArrayList<>();
        redact(root, ".", redacted);
        Element os = child(root, "os");
        Element type = child(os, "type");
        String machine = type == null ? "" : type.getAttribute("machine");
        String arch = type == null || type.getAttribute("arch").isEmpty() ? "x86_64" : type.getAttribute("arch");
        int cpus = number(text(child(root, "vcpu")), 1);
        long memory = bytes(child(root, "memory"));
        Optional<String> cpuModel = cpuModel(child(root, "cpu"));
        Optional<String> firmware = firmware(os);
        List<VmDefinition.Disk> disks = new ArrayList<>();
        List<VmDefinition.Nic> nics = new ArrayList<>();
        Element devices = child(root, "devices");
        for (Element d : children(devices, "disk")) {
            if (!"disk".equals(d.getAttribute("device"))
                    && !d.getAttribute("device").isEmpty()) {
                continue;
            }
            Element target = child(d, "target");
            if (target == null || target.getAttribute("dev").isEmpty()) {
                continue;
            }
            disks.add(new VmDefinition.Disk(
                    target.getAttribute("dev"),
                    target.getAttribute("bus").isEmpty() ? "unknown" : target.getAttribute("bus"),
                    Optional.empty(),
                    nonEmpty(text(child(d, "serial"))),
                    nonEmpty(attribute(child(d, "driver"), "type"))));
        }
        int n = 0;
        for (Element i : children(devices, "interface")) {
            Element src = child(i, "source");
            String kind = i.getAttribute("type");
            Optional<String> network = Optional.empty();
            if (src != null) {
                String name =
                        firstNonEmpty(src.getAttribute("network"), src.getAttribute("bridge"), src.getAttribute("dev"));
                network = name.isEmpty() ? Optional.empty() : Optional.of(kind + ":" + name);
            }
            String id = firstNonEmpty(
                    attribute(child(i, "alias"), "name"), attribute(child(i, "target"), "dev"), "net" + n);
            nics.add(new VmDefinition.Nic(
                    id, attribute(child(i, "mac"), "address"), attribute(child(i, "model"), "type"), network));
            n++;
        }
        return new VmDefinition(
                VmDefinition.VERSION,
                VmDefinition.LIBVIRT,
                machine,
                arch,
                cpus,
                memory,
                cpuModel,
                firmware,
                disks,
                nics,
                Optional.of(serialize(doc)),
                redacted);
    }

    /** Removes the secrets under {@code e}, whose path is {@code path} ({@code .} for the root). */
    private static void redact(Element e, String path, List<String> redacted) {
        NamedNodeMap attrs = e.getAttributes();
        for (int i = attrs.getLength() - 1; i >= 0; i--) {
            Attr a = (Attr) attrs.item(i);
            if (SECRET_ATTRIBUTES.contains(a.getName().toLowerCase(Locale.ROOT))) {
                redacted.add(path + "/@" + a.getName());
                e.removeAttributeNode(a);
            }
        }
        List<Element> kids = new ArrayList<>();
        for (Node c = e.getFirstChild(); c != null; c = c.getNextSibling()) {
            if (c instanceof Element k) {
                kids.add(k);
            }
        }
        for (Element k : kids) {
            String at = path + "/" + k.getTagName();
            if (SECRET_ELEMENTS.contains(k.getTagName())) {
                redacted.add(at);
                e.removeChild(k);
            } else {
                redact(k, k.getAttribute("type").isEmpty() ? at : at + "[" + k.getAttribute("type") + "]", redacted);
            }
        }
    }

    private static Optional<String> cpuModel(Element cpu) {
        if (cpu == null) {
            return Optional.empty();
        }
        String model = text(child(cpu, "model"));
        if (!model.isEmpty()) {
            return Optional.of(model);
        }
        return nonEmpty(cpu.getAttribute("mode"));
    }

    private static Optional<String> firmware(Element os) {
        if (os == null) {
            return Optional.empty();
        }
        if (!os.getAttribute("firmware").isEmpty()) {
            return Optional.of(os.getAttribute("firmware"));
        }
        String loader = text(child(os, "loader"));
        return loader.isEmpty() ? Optional.of("bios") : Optional.of(loader);
    }

    private static long bytes(Element memory) {
        long value = number(text(memory), 0);
        String unit = memory == null ? "KiB" : memory.getAttribute("unit");
        return switch (unit.isEmpty() ? "KiB" : unit) {
            case "b", "bytes" -> value;
            case "KB" -> value * 1000;
            case "MB" -> value * 1000_000;
            case "GB" -> value * 1000_000_000;
            case "M", "MiB" -> value << 20;
            case "G", "GiB" -> value << 30;
            case "T", "TiB" -> value << 40;
            default -> value << 10;
        };
    }

    private static int number(String s, int dflt) {
        try {
            return s.isEmpty() ? dflt : Integer.parseInt(s.strip());
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    private static String text(Element e) {
        return e == null ? "" : e.getTextContent().strip();
    }

    private static String attribute(Element e, String name) {
        return e == null ? "" : e.getAttribute(name);
    }

    private static Optional<String> nonEmpty(String s) {
        return s.isEmpty() ? Optional.empty() : Optional.of(s);
    }

    private static String firstNonEmpty(String... values) {
        for (String v : values) {
            if (!v.isEmpty()) {
                return v;
            }
        }
        return "";
    }
}
