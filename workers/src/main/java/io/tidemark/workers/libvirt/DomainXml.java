package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;
import org.xml.sax.SAXException;

/** The few facts this adapter reads from libvirt's domain, checkpoint and backup XML. */
final class DomainXml {

    private DomainXml() {}

    /**
     * One disk of a domain ({@code <disk device='disk'>}).
     *
     * @param target the target device name ({@code vda}), the disk's name in manifests
     * @param format the driver type ({@code qcow2}, {@code raw}, ...)
     * @param source the image file, block device or network volume
     * @param index libvirt's index of the source in the live XML (its QEMU node is {@code
     *     libvirt-<index>-format}); -1 when absent
     */
    record Disk(String target, String format, String source, int index) {}

    /** The guest disks of a domain, in the domain's order; CD-ROMs and floppies are not backed up. */
    static List<Disk> disks(String domainXml) {
        List<Disk> out = new ArrayList<>();
        for (Element disk : children(child(parse(domainXml).getDocumentElement(), "devices"), "disk")) {
            if (!"disk".equals(disk.getAttribute("device"))) {
                continue;
            }
            String target = attribute(disk, "target", "dev");
            if (target.isEmpty()) {
                continue;
            }
            Element src = child(disk, "source");
            String source = src == null
                    ? ""
                    : first(src.getAttribute("file"), src.getAttribute("dev"), src.getAttribute("name"));
            String index = src == null ? "" : src.getAttribute("index");
            out.add(new Disk(
                    target,
                    attribute(disk, "driver", "type"),
                    source,
                    index.matches("[0-9]{1,9}") ? Integer.parseInt(index) : -1));
        }
        return out;
    }

    /** Per disk of a checkpoint's XML: its {@code checkpoint} attribute ({@code bitmap} or {@code no}). */
    static Map<String, String> checkpointDisks(String checkpointXml) {
        Map<String, String> out = new HashMap<>();
        Element disks = child(parse(checkpointXml).getDocumentElement(), "disks");
        for (Element d : children(disks, "disk")) {
            out.put(d.getAttribute("name"), d.getAttribute("checkpoint"));
        }
        return out;
    }

    /**
     * One disk of a running backup job's XML.
     *
     * @param exportName the NBD export name
     * @param exportBitmap the dirty bitmap exported with it, for an incremental disk
     */
    record BackupDisk(String exportName, Optional<String> exportBitmap) {}

    /** Per disk name: how the running backup job exports it. */
    static Map<String, BackupDisk> backupDisks(String backupXml) {
        Map<String, BackupDisk> out = new HashMap<>();
        Element disks = child(parse(backupXml).getDocumentElement(), "disks");
        for (Element d : children(disks, "disk")) {
            if (!"yes".equals(d.getAttribute("backup"))) {
                continue;
            }
            String bitmap = d.getAttribute("exportbitmap");
            out.put(
                    d.getAttribute("name"),
                    new BackupDisk(
                            first(d.getAttribute("exportname"), d.getAttribute("name")),
                            bitmap.isEmpty() ? Optional.empty() : Optional.of(bitmap)));
        }
        return out;
    }

    /** Escapes text for an XML attribute or element. */
    static String escape(String s) {
        return s.replace("&", "&amp;")
                .replace("<", "&lt;")
                .replace(">", "&gt;")
                .replace("'", "&apos;")
                .replace("\"", "&quot;");
    }

    private static Document parse(String xml) {
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            DocumentBuilder b = f.newDocumentBuilder();
            return b.parse(new InputSource(new StringReader(xml)));
        } catch (ParserConfigurationException | SAXException | IOException e) {
            throw new PermanentException("libvirt returned XML this adapter cannot parse: " + e.getMessage(), e);
        }
    }

    private static Element child(Element parent, String name) {
        if (parent == null) {
            return null;
        }
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(name)) {
                return e;
            }
        }
        return null;
    }

    private static List<Element> children(Element parent, String name) {
        List<Element> out = new ArrayList<>();
        if (parent == null) {
            return out;
        }
        NodeList nodes = parent.getChildNodes();
        for (int i = 0; i < nodes.getLength(); i++) {
            if (nodes.item(i) instanceof Element e && e.getTagName().equals(name)) {
                out.add(e);
            }
        }
        return out;
    }

    private static String attribute(Element parent, String child, String attribute) {
        Element c = child(parent, child);
        return c == null ? "" : c.getAttribute(attribute);
    }

    private static String first(String... values) {
        for (String v : values) {
            if (!v.isEmpty()) {
                return v;
            }
        }
        return "";
    }
}
