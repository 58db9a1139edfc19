package io.tidemark.core.hypervisor;

import java.util.List;

/** A VM as a hypervisor sees it. */
public record VmInfo(String name, List<DiskInfo> disks) {
    public VmInfo {
        disks = List.copyOf(disks);
    }
}
