package io.tidemark.workers.nbd;

/**
 * One extent of an NBD meta context map: {@code [offset, offset + length)} with the context's flags.
 * What the flags mean depends on the context: in {@code base:allocation} bit 0 is "hole" and bit 1
 * "reads as zeros"; in {@code qemu:dirty-bitmap:NAME} bit 0 is "dirty".
 */
public record Extent(long offset, long length, int flags) {

    /** {@code base:allocation}: the range is not allocated. */
    public static final int HOLE = 1;
    /** {@code base:allocation}: the range reads as zeros. */
    public static final int ZERO = 2;
    /** {@code qemu:dirty-bitmap:*}: the range changed since the bitmap was started. */
    public static final int DIRTY = 1;

    public Extent {
        if (offset < 0 || length <= 0) {
            throw new IllegalArgumentException("bad extent offset=" + offset + " length=" + length);
        }
    }

    /** The first byte after the extent. */
    public long end() {
        return offset + length;
    }

    /** In {@code base:allocation}: true when the range reads as zeros. */
    public boolean zero() {
        return (flags & ZERO) != 0;
    }

    /** In {@code base:allocation}: true when the range is a hole. */
    public boolean hole() {
        return (flags & HOLE) != 0;
    }

    /** In a {@code qemu:dirty-bitmap:*} context: true when the range is dirty. */
    public boolean dirty() {
        return (flags & DIRTY) != 0;
    }
}
