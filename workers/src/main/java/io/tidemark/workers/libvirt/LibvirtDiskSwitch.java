package io.tidemark.workers.libvirt;

import io.tidemark.core.PermanentException;
import io.tidemark.core.hypervisor.DiskSwitch;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.libvirt.Domain;
import org.libvirt.LibvirtException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;

/**
 * A rollback's disk switch on a libvirt host. libvirt cannot move a running domain's hard disk
 * onto another image (only removable media change in place, and a block copy would copy the
 * current bytes over the restored ones), and raw QMP under libvirt would leave its view of the
 * domain stale. So the domain is paused, powered off and started again from its own definition
 * with the disks' sources replaced: to the guest that is the reset a rollback on a QMP host does.
 * A persistent domain is redefined (its checkpoints' metadata stays; the new images have no
 * bitmaps, so the next capture is full); a transient one is created again. If the new definition
 * does not start, the old one is started again and the error names both.
 */
final class LibvirtDiskSwitch implements DiskSwitch {

    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(LibvirtDiskSwitch.class);

    /** virDomainXMLFlags VIR_DOMAIN_XML_INACTIVE: the persistent definition, not the live one. */
    private static final int XML_INACTIVE = 2;

    /** virDomainCheckpointDeleteFlags VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY. */
    private static final int CHECKPOINT_DELETE_METADATA_ONLY = 2;

    private final LibvirtHypervisor hypervisor;

    LibvirtDiskSwitch(LibvirtHypervisor hypervisor) {
        this.hypervisor = hypervisor;
    }

    @Override
    public Map<String, Path> imageFiles(String vm) {
        try {
            Map<String, Path> out = new TreeMap<>();
            for (DomainXml.Disk d : DomainXml.disks(hypervisor.lookup(vm).getXMLDesc(0))) {
                if (!d.source().isEmpty() && d.source().startsWith("/")) {
                    out.put(d.target(), Path.of(d.source()));
                }
            }
            return out;
        } catch (LibvirtException e) {
            throw hypervisor.translate(e, "reading the disks of domain '" + vm + "'");
        }
    }

    @Override
    public void switchDisks(String vm, Map<String, Path> images) {
        try {
            Domain d = hypervisor.lookup(vm);
            boolean persistent = d.isPersistent() == 1;
            String before = d.getXMLDesc(persistent ? XML_INACTIVE : 0);
            String after = withImages(before, images);
            d.suspend(); // the guest stops writing the old images before it is powered off
            d.destroy();
            try {
                start(persistent, after);
            } catch (LibvirtException e) {
                try {
                    start(persistent, before);
                } catch (LibvirtException again) {
                    e.addSuppressed(again);
                }
                throw new PermanentException(
                        "libvirt " + hypervisor.uri() + " did not start domain '" + vm + "' on the"
                                + " restored images " + images + ": " + LibvirtHypervisor.message(e)
                                + "; it runs again on"
                                + " its previous images if libvirt allowed it",
                        e);
            }
            forgetCheckpoints(vm);
        } catch (LibvirtException e) {
            throw hypervisor.translate(e, "switching the disks of domain '" + vm + "'");
        }
    }

    /**
     * Our checkpoints name bitmaps of the previous images, which the domain no longer uses: their
     * metadata goes (the images keep their bitmaps), so the next capture is full instead of failing
     * to delete a bitmap the new image never had. Other tools' checkpoints are left alone.
     */
    private void forgetCheckpoints(String vm) {
        try {
            Domain d = hypervisor.lookup(vm);
            for (String name : d.checkpointListNames(0)) {
                if (name.startsWith(hypervisor.checkpointPrefix())) {
                    d.checkpointLookupByName(name).delete(CHECKPOINT_DELETE_METADATA_ONLY);
                }
            }
        } catch (LibvirtException e) { // the switch is done; the next capture removes what is left
            log.warn(
                    "domain {} runs on its restored images, but forgetting the checkpoints of the previous ones"
                            + " failed: {}",
                    vm,
                    LibvirtHypervisor.message(e));
        }
    }

    private void start(boolean persistent, String xml) throws LibvirtException {
        if (persistent) {
            hypervisor.connection().domainDefineXML(xml).create();
        } else {
            hypervisor.connection().domainCreateXML(xml, 0);
        }
    }

    /** {@code domainXml} with each named disk reading its new qcow2 image. */
    static String withImages(String domainXml, Map<String, Path> images) {
        Document doc = LibvirtXml.parse(domainXml, "libvirt's domain XML");
        Element devices = LibvirtXml.child(doc.getDocumentElement(), "devices");
        int switched = 0;
        for (Element disk : LibvirtXml.children(devices, "disk")) {
            Element target = LibvirtXml.child(disk, "target");
            Path image = target == null ? null : images.get(target.getAttribute("dev"));
            if (image == null) {
                continue;
            }
            disk.setAttribute("type", "file");
            Element driver = LibvirtXml.child(disk, "driver");
            if (driver == null) {
                driver = doc.createElement("driver");
                driver.setAttribute("name", "qemu");
                disk.insertBefore(driver, disk.getFirstChild());
            }
            driver.setAttribute("type", "qcow2");
            for (String gone : List.of("source", "backingStore")) {
                for (Element e : LibvirtXml.children(disk, gone)) {
                    disk.removeChild(e);
                }
            }
            Element source = doc.createElement("source");
            source.setAttribute("file", image.toString());
            disk.insertBefore(source, driver.getNextSibling());
            switched++;
        }
        if (switched != images.size()) {
            throw new PermanentException(
                    "the domain has no disk for some of " + images.keySet() + "; nothing was switched");
        }
        return LibvirtXml.serialize(doc);
    }
}
