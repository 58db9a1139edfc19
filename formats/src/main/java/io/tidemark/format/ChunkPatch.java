package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

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
        applyInto(chunk);
        return chunk;
    }

    /**
     * Writes the patch's ranges over the base chunk's bytes at the start of {@code buffer} (a reused
     * buffer at least {@link #chunkLength()} long), leaving the rest of it alone.
     */
    public void applyInto(byte[] buffer) {
        if (buffer.length < chunkLength) {
            throw new IllegalArgumentException(
                    "patch for a " + chunkLength + "-byte chunk applied to a " + buffer.length + "-byte buffer");
        }
        int at = 0;
        for (Range r : ranges) {
            System.arraycopy(data, at, buffer, r.offset(), r.length());
            at += r.length();
        }
    }

    /**
     * This patch's ranges and {@code changed} (offset in the chunk → its new bytes) on the same base:
     * where they overlap, {@code changed} wins. Ranges that touch are merged.
     */
    public ChunkPatch with(Map<Integer, byte[]> changed) {
        int n = ranges.size() + changed.size();
        int[] offsets = new int[n];
        byte[][] layers = new byte[n][];
        int k = 0;
        int at = 0;
        for (Range r : ranges) {
            offsets[k] = r.offset();
            layers[k++] = Arrays.copyOfRange(data, at, at + r.length());
            at += r.length();
        }
        for (Map.Entry<Integer, byte[]> e : changed.entrySet()) { // later layers are written over earlier ones
            offsets[k] = e.getKey();
            layers[k++] = e.getValue();
        }
        return merged(base, chunkLength, offsets, layers);
    }

    /** A patch on {@code base} of the bytes {@code changed} (offset in the chunk → new bytes) of a chunk. */
    public static ChunkPatch of(Digest base, int chunkLength, Map<Integer, byte[]> changed) {
        int[] offsets = new int[changed.size()];
        byte[][] layers = new byte[changed.size()][];
        int k = 0;
        for (Map.Entry<Integer, byte[]> e : changed.entrySet()) {
            offsets[k] = e.getKey();
            layers[k++] = e.getValue();
        }
        return merged(base, chunkLength, offsets, layers);
    }

    /**
     * The patch of the layers ({@code offsets[i]} → {@code layers[i]}), each written over the ones
     * before it: the union of their ranges, touching ones merged. Costs O(layers · log layers +
     * bytes), not O(chunk). Plain loops over primitive arrays: it runs once per patched chunk, and a
     * backup in a fresh process (the CLI's) pays for compiling what it calls.
     */
    private static ChunkPatch merged(Digest base, int chunkLength, int[] offsets, byte[][] layers) {
        int n = 0;
        long[] spans = new long[offsets.length]; // start << 32 | end, sorted by start
        for (int i = 0; i < offsets.length; i++) {
            if (layers[i].length > 0) {
                spans[n++] = ((long) offsets[i] << 32) | (offsets[i] + layers[i].length);
            }
        }
        Arrays.sort(spans, 0, n);
        int[] starts = new int[n];
        int[] ends = new int[n];
        int count = 0;
        for (int i = 0; i < n; i++) {
            int start = (int) (spans[i] >>> 32);
            int end = (int) spans[i];
            if (count > 0 && start <= ends[count - 1]) {
                ends[count - 1] = Math.max(ends[count - 1], end);
            } else {
                starts[count] = start;
                ends[count++] = end;
            }
        }
        List<Range> out = new ArrayList<>(count);
        int[] dataAt = new int[count];
        int total = 0;
        for (int i = 0; i < count; i++) {
            out.add(new Range(starts[i], ends[i] - starts[i]));
            dataAt[i] = total;
            total += ends[i] - starts[i];
        }
        byte[] data = new byte[total];
        for (int i = 0; i < offsets.length; i++) {
            if (layers[i].length == 0) {
                continue;
            }
            int r = Arrays.binarySearch(starts, 0, count, offsets[i]);
            if (r < 0) {
                r = -r - 2; // the range that contains this offset starts before it
            }
            System.arraycopy(layers[i], 0, data, dataAt[r] + offsets[i] - starts[r], layers[i].length);
        }
        return new ChunkPatch(base, chunkLength, out, data);
    }

    /** The length of {@link #toBytes()}. */
    public int payloadBytes() {
        return FormatConstants.PATCH_HEADER_BYTES + ranges.size() * 8 + data.length;
    }

    public byte[] toBytes() {
        byte[] out = new byte[payloadBytes()];
        writeTo(ByteBuffer.wrap(out));
        return out;
    }

    /** Writes {@link #toBytes()} at {@code b}'s position (a pack's slot, ADR 26), advancing it. */
    void writeTo(ByteBuffer b) {
        b.order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PATCH_MAGIC);
        b.put((byte) FormatConstants.PATCH_VERSION);
        b.put(new byte[3]);
        base.copyTo(b.array(), b.arrayOffset() + b.position());
        b.position(b.position() + FormatConstants.DIGEST_BYTES);
        b.putInt(chunkLength);
        b.putInt(ranges.size());
        for (Range r : ranges) {
            b.putInt(r.offset());
            b.putInt(r.length());
        }
        b.put(data);
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
