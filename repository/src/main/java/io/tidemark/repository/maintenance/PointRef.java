package io.tidemark.repository.maintenance;

/** One restore point, named in reports: the VM and the restore point id. */
public record PointRef(String vm, String restorePointId) implements Comparable<PointRef> {

    @Override
    public int compareTo(PointRef o) {
        int c = vm.compareTo(o.vm);
        return c != 0 ? c : restorePointId.compareTo(o.restorePointId);
    }

    @Override
    public String toString() {
        return vm + "/" + restorePointId;
    }
}
