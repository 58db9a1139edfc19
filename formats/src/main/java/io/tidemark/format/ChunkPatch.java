package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The bytes of a chunk that changed since its base chunk (ADR 15): ranges of the chunk and their
 * new bytes. A patched chunk reads as the base chunk with every range written over it. A patch is
 * always against a whole chunk, never against another patch, so reading a patched chunk costs the
 * base and one patch, however many incrementals made it: a later change to the same chunk makes a
 * new patch holding the old ranges and the new ones ({@link #with}).
 *
 * <p>Payload layout: {@link FormatConstants#PATCH_MAGIC}. Immutable.
 */
public final class ChunkPatch {

    /** One changed range of the chunk: {@code [offset, offset + length)}. */
    public record Range(int offset, int length) {
        public Range {
            if (offset < 0 || length <= 0) {
                throw new IllegalArgumentException("bad patch range offset=" + offset + " length=" + length);
            }
        }

        public int end() {
            return offset + length;
        }
    }

    private final Digest base;
    private final int chunkLength;
    private final List<Range> ranges;
    private final byte[] data;

    /**
     * @param ranges increasing and not touching (merge touching ranges first), inside the chunk
     * @param data the ranges' bytes, in order, as long as their total length
     */
    public ChunkPatch(Digest base, int chunkLength, List<Range> ranges, byte[] data) {
        this.base = base;
        this.chunkLength = chunkLength;
        this.ranges = List.copyOf(ranges);
        this.data = data;
        int end = -1;
        long total = 0;
        for (Range r : this.ranges) {
            if (r.offset() <= end || r.end() > chunkLength) {
                throw new IllegalArgumentException("patch ranges must increase, not touch and stay inside the "
                        + chunkLength + "-byte chunk: " + this.ranges);
            }
            end = r.end();
            total += r.length();
        }
        if (this.ranges.isEmpty() || total != data.length) {
            throw new IllegalArgumentException(
                    "a patch needs at least one range and as many bytes as its ranges cover (" + total + "), got "
                            + data.length);
        }
    }

    public Digest base() {
        return base;
    }

    public int chunkLength() {
        return chunkLength;
    }

    public List<Range> ranges() {
        return ranges;
    }

    /** The bytes the ranges cover. */
    public int dataBytes() {
        return data.length;
    }

    /** Writes the ranges over {@code chunk} (the base's plaintext, {@link #chunkLength} bytes) in place. */
    public byte[] applyTo(byte[] chunk) {
        if (chunk.length != chunkLength) {
            throw new IllegalArgumentException(
                    "patch for a " + chunkLength + "-byte chunk applied to " + chunk.length + " bytes");
        }
        int at = 0;
        for (Range r : ranges) {
            System.arraycopy(data, at, chunk, r.offset(), r.length());
            at += r.length();
        }
        return chunk;
    }

    /**
     * This patch's ranges and {@code changed} (offset in the chunk → its new bytes) on the same base:
     * where they overlap, {@code changed} wins. Ranges that touch are merged.
     */
    public ChunkPatch with(Map<Integer, byte[]> changed) {
        TreeMap<Integer, byte[]> all = new TreeMap<>();
        int at = 0;
        for (Range r : ranges) {
            byte[] b = new byte[r.length()];
            System.arraycopy(data, at, b, 0, r.length());
            at += r.length();
            all.put(r.offset(), b);
        }
        // written in order of offset, the later writes (changed) over the earlier (this patch)
        byte[] image = new byte[chunkLength];
        boolean[] covered = new boolean[chunkLength];
        for (Map<Integer, byte[]> layer : List.of(all, changed)) {
            for (Map.Entry<Integer, byte[]> e : layer.entrySet()) {
                System.arraycopy(e.getValue(), 0, image, e.getKey(), e.getValue().length);
                for (int i = e.getKey(); i < e.getKey() + e.getValue().length; i++) {
                    covered[i] = true;
                }
            }
        }
        return fromCovered(base, image, covered);
    }

    /** A patch on {@code base} of the bytes {@code changed} (offset in the chunk → new bytes) of a chunk. */
    public static ChunkPatch of(Digest base, int chunkLength, Map<Integer, byte[]> changed) {
        byte[] image = new byte[chunkLength];
        boolean[] covered = new boolean[chunkLength];
        for (Map.Entry<Integer, byte[]> e : changed.entrySet()) {
            System.arraycopy(e.getValue(), 0, image, e.getKey(), e.getValue().length);
            for (int i = e.getKey(); i < e.getKey() + e.getValue().length; i++) {
                covered[i] = true;
            }
        }
        return fromCovered(base, image, covered);
    }

    private static ChunkPatch fromCovered(Digest base, byte[] image, boolean[] covered) {
        List<Range> ranges = new ArrayList<>();
        int total = 0;
        int i = 0;
        while (i < covered.length) {
            if (!covered[i]) {
                i++;
                continue;
            }
            int start = i;
            while (i < covered.length && covered[i]) {
                i++;
            }
            ranges.add(new Range(start, i - start));
            total += i - start;
        }
        byte[] data = new byte[total];
        int at = 0;
        for (Range r : ranges) {
            System.arraycopy(image, r.offset(), data, at, r.length());
            at += r.length();
        }
        return new ChunkPatch(base, image.length, ranges, data);
    }

    public byte[] toBytes() {
        byte[] out = new byte[FormatConstants.PATCH_HEADER_BYTES + ranges.size() * 8 + data.length];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PATCH_MAGIC);
        b.put((byte) FormatConstants.PATCH_VERSION);
        b.put(new byte[3]);
        base.copyTo(out, b.position());
        b.position(b.position() + FormatConstants.DIGEST_BYTES);
        b.putInt(chunkLength);
        b.putInt(ranges.size());
        for (Range r : ranges) {
            b.putInt(r.offset());
            b.putInt(r.length());
        }
        b.put(data);
        return out;
    }

    /** Parses the plaintext of the patch stored under {@code key}. */
    public static ChunkPatch parse(String key, byte[] payload) {
        ByteBuffer b = ByteBuffer.wrap(payload).order(ByteOrder.BIG_ENDIAN);
        if (payload.length < FormatConstants.PATCH_HEADER_BYTES || b.getInt() != FormatConstants.PATCH_MAGIC) {
            throw new CorruptObjectException(key, "not a chunk patch");
        }
        int version = b.get();
        if (version != FormatConstants.PATCH_VERSION) {
            throw new CorruptObjectException(key, "chunk patch version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        Digest base = Digest.readFrom(payload, 8);
        b.position(8 + FormatConstants.DIGEST_BYTES);
        int chunkLength = b.getInt();
        int n = b.getInt();
        if (chunkLength <= 0 || n <= 0 || (long) n * 8 > payload.length - FormatConstants.PATCH_HEADER_BYTES) {
            throw new CorruptObjectException(key, "chunk patch header is inconsistent");
        }
        List<Range> ranges = new ArrayList<>(n);
        long total = 0;
        for (int i = 0; i < n; i++) {
            int offset = b.getInt();
            int length = b.getInt();
            if (offset < 0 || length <= 0) {
                throw new CorruptObjectException(key, "chunk patch range " + i + " is inconsistent");
            }
            ranges.add(new Range(offset, length));
            total += length;
        }
        if (total != b.remaining()) {
            throw new CorruptObjectException(key, "chunk patch data does not match its ranges");
        }
        byte[] data = new byte[(int) total];
        b.get(data);
        try {
            return new ChunkPatch(base, chunkLength, ranges, data);
        } catch (IllegalArgumentException e) {
            throw new CorruptObjectException(key, e.getMessage());
        }
    }
}
