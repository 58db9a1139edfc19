package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * The patches of several entries of one index page, stored as one object (ADR 26): slot {@code i}
 * is the {@link ChunkPatch} of entry {@code i} of the page that names the pack. A scattered
 * incremental then writes a few packs per page instead of one object per patched chunk.
 *
 * <p>Payload layout: {@link FormatConstants#PACK_MAGIC}. Immutable.
 */
public final class PatchPack {

    private final SortedMap<Integer, ChunkPatch> slots;
    private final SortedMap<Integer, Integer> slotBytes;

    /** @param slots page entry index → its patch; at least one */
    public PatchPack(Map<Integer, ChunkPatch> slots) {
        if (slots.isEmpty()) {
            throw new IllegalArgumentException("a pack needs at least one patch");
        }
        TreeMap<Integer, ChunkPatch> sorted = new TreeMap<>(slots);
        TreeMap<Integer, Integer> bytes = new TreeMap<>();
        sorted.forEach((entry, patch) -> {
            if (entry < 0) {
                throw new IllegalArgumentException("pack slot for entry " + entry);
            }
            bytes.put(entry, patch.payloadBytes());
        });
        this.slots = Collections.unmodifiableSortedMap(sorted);
        this.slotBytes = Collections.unmodifiableSortedMap(bytes);
    }

    /** Page entry index → its patch, in entry order. */
    public SortedMap<Integer, ChunkPatch> slots() {
        return slots;
    }

    /** The bytes of entry {@code entry}'s slot (its patch's payload), as the page records them. */
    public int slotBytes(int entry) {
        Integer n = slotBytes.get(entry);
        if (n == null) {
            throw new IllegalArgumentException("no slot for entry " + entry);
        }
        return n;
    }

    /** The bytes of all slots: what a page records as the pack's size. */
    public int bytes() {
        int total = 0;
        for (int n : slotBytes.values()) {
            total += n;
        }
        return total;
    }

    /**
     * The patch of page entry {@code entry}.
     *
     * @throws CorruptObjectException naming {@code key} when the pack has no slot for it: the page and
     *     the pack disagree
     */
    public ChunkPatch slot(String key, int entry) {
        ChunkPatch p = slots.get(entry);
        if (p == null) {
            throw new CorruptObjectException(
                    key, "pack has no patch for index entry " + entry + "; run `tidemark verify`");
        }
        return p;
    }

    public byte[] toBytes() {
        int length = FormatConstants.PACK_HEADER_BYTES + slots.size() * FormatConstants.PACK_SLOT_ENTRY_BYTES + bytes();
        byte[] out = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PACK_MAGIC);
        b.put((byte) FormatConstants.PACK_VERSION);
        b.put(new byte[3]);
        b.putInt(slots.size());
        slotBytes.forEach((entry, n) -> {
            b.putInt(entry);
            b.putInt(n);
        });
        slots.values().forEach(p -> p.writeTo(b));
        return out;
    }

    /** Whether {@code payload} is a pack's (rather than a standalone patch's). */
    public static boolean isPack(byte[] payload) {
        return payload.length >= 4 && ByteBuffer.wrap(payload).getInt() == FormatConstants.PACK_MAGIC;
    }

    /** Parses the plaintext of the pack stored under {@code key}. */
    public static PatchPack parse(String key, byte[] payload) {
        ByteBuffer b = ByteBuffer.wrap(payload).order(ByteOrder.BIG_ENDIAN);
        if (payload.length < FormatConstants.PACK_HEADER_BYTES || b.getInt() != FormatConstants.PACK_MAGIC) {
            throw new CorruptObjectException(key, "not a pack of patches");
        }
        int version = b.get();
        if (version != FormatConstants.PACK_VERSION) {
            throw new CorruptObjectException(key, "pack version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        int n = b.getInt();
        if (n <= 0 || (long) n * FormatConstants.PACK_SLOT_ENTRY_BYTES > b.remaining()) {
            throw new CorruptObjectException(key, "pack header is inconsistent");
        }
        int[] entries = new int[n];
        int[] lengths = new int[n];
        long total = 0;
        for (int i = 0; i < n; i++) {
            entries[i] = b.getInt();
            lengths[i] = b.getInt();
            if ((i > 0 && entries[i] <= entries[i - 1]) || entries[i] < 0 || lengths[i] <= 0) {
                throw new CorruptObjectException(key, "pack slot " + i + " is out of order or empty");
            }
            total += lengths[i];
        }
        if (total != b.remaining()) {
            throw new CorruptObjectException(key, "pack data does not match its slots");
        }
        TreeMap<Integer, ChunkPatch> slots = new TreeMap<>();
        int at = b.position();
        for (int i = 0; i < n; i++) {
            byte[] slot = new byte[lengths[i]];
            System.arraycopy(payload, at, slot, 0, lengths[i]);
            at += lengths[i];
            slots.put(entries[i], ChunkPatch.parse(key + " (slot of entry " + entries[i] + ")", slot));
        }
        return new PatchPack(slots);
    }
}
