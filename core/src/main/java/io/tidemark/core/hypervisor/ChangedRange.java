package io.tidemark.core.hypervisor;

/**
 * One range of a disk that the storage says may have changed since the parent checkpoint
 * ({@code [offset, offset + length)}); see {@link DiskExport#changedRanges()}.
 */
public record ChangedRange(long offset, long length) {
    public ChangedRange {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("bad changed range offset=" + offset + " length=" + length);
        }
    }
}
