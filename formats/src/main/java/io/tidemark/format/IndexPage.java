package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A page of a disk index: the digests of consecutive chunks. Pages are content-addressed objects,
 * so a page that an incremental does not change is the same object as its parent's and costs
 * nothing to write or ship.
 *
 * <p>An entry may also name a <em>patch</em> ({@link ChunkPatch}, ADR 15): the chunk then reads as
 * its base chunk ({@link #get}) with the patch's ranges written over it. A page with no patch is
 * written as version 1, byte for byte as before patches existed; a page with patches is version
 * 2, which a reader that predates patches refuses ("upgrade Tidemark") instead of restoring the
 * base alone. A patch may be a slot of a {@link PatchPack} (ADR 26, {@link #packed}): the entry then
 * names the pack, and its patch is the pack's slot for the entry's index; such a page is version 3,
 * which records each pack's size and each slot's, so a writer sees how much of a pack is still live
 * without reading it.
 */
public final class IndexPage {

    private final Digest[] entries;
    /** Patch (or pack) digests by entry; {@link Digest#ZERO} (or a null array: none at all) for no patch. */
    private Digest[] patches;
    /** By entry, the bytes of its slot when its patch is in a pack, else 0 (or a null array: no packs). */
    private int[] slotBytes;
    /** The size of each pack an entry names or named ({@link PatchPack#bytes}). */
    private final Map<Digest, Integer> packBytes;

    public IndexPage(int size) {
        entries = new Digest[size];
        Arrays.fill(entries, Digest.ZERO);
        packBytes = new HashMap<>();
    }

    private IndexPage(Digest[] entries, Digest[] patches, int[] slotBytes, Map<Digest, Integer> packBytes) {
        this.entries = entries;
        this.patches = patches;
        this.slotBytes = slotBytes;
        this.packBytes = new HashMap<>(packBytes);
    }

    public int size() {
        return entries.length;
    }

    /** The digest of entry {@code i}'s chunk, or of its base chunk when it has a {@link #patch}. */
    public Digest get(int i) {
        return entries[i];
    }

    /**
     * The patch of entry {@code i}, or {@link Digest#ZERO} when it reads as {@link #get} alone. When
     * {@link #packed}, the digest of the pack whose slot {@code i} is the patch.
     */
    public Digest patch(int i) {
        return patches == null ? Digest.ZERO : patches[i];
    }

    /** What entry {@code i} names as its patch: none, a patch object, or its slot of a pack. */
    public PatchRef patchRef(int i) {
        Digest p = patch(i);
        return p.isZero() ? PatchRef.NONE : new PatchRef(p, packed(i) ? i : -1);
    }

    /** Whether entry {@code i}'s {@link #patch} names a pack (ADR 26) rather than a patch object. */
    public boolean packed(int i) {
        return slotBytes != null && slotBytes[i] > 0;
    }

    /** The bytes of entry {@code i}'s slot in its pack; 0 unless {@link #packed}. */
    public int slotBytes(int i) {
        return slotBytes == null ? 0 : slotBytes[i];
    }

    /** The bytes of all slots of {@code pack}, an object some entry of this page names as a pack. */
    public int packBytes(Digest pack) {
        Integer n = packBytes.get(pack);
        if (n == null) {
            throw new IllegalArgumentException("no entry of this page names pack " + pack);
        }
        return n;
    }

    /** Sets entry {@code i} to chunk {@code d}, without a patch. */
    public void set(int i, Digest d) {
        entries[i] = d;
        if (patches != null) {
            patches[i] = Digest.ZERO;
        }
        if (slotBytes != null) {
            slotBytes[i] = 0;
        }
    }

    /** Sets entry {@code i} to base chunk {@code base} with {@code patch} (a patch object) over it. */
    public void set(int i, Digest base, Digest patch) {
        if (patch.isZero()) {
            set(i, base);
            return;
        }
        ensurePatches();
        entries[i] = base;
        patches[i] = patch;
        if (slotBytes != null) {
            slotBytes[i] = 0;
        }
    }

    /**
     * Sets entry {@code i} to base chunk {@code base} with its slot of {@code pack} over it (ADR 26).
     *
     * @param slot the bytes of the entry's slot ({@link PatchPack#slotBytes})
     * @param bytes the pack's size ({@link PatchPack#bytes})
     */
    public void setPacked(int i, Digest base, Digest pack, int slot, int bytes) {
        if (pack.isZero() || slot <= 0 || bytes < slot) {
            throw new IllegalArgumentException("pack " + pack + " slot of " + slot + " of " + bytes + " bytes");
        }
        ensurePatches();
        if (slotBytes == null) {
            slotBytes = new int[entries.length];
        }
        entries[i] = base;
        patches[i] = pack;
        slotBytes[i] = slot;
        packBytes.put(pack, bytes);
    }

    private void ensurePatches() {
        if (patches == null) {
            patches = new Digest[entries.length];
            Arrays.fill(patches, Digest.ZERO);
        }
    }

    /** How many entries have a patch. */
    public int patchCount() {
        int n = 0;
        if (patches != null) {
            for (Digest p : patches) {
                if (!p.isZero()) {
                    n++;
                }
            }
        }
        return n;
    }

    public IndexPage copy() {
        return new IndexPage(
                entries.clone(),
                patches == null ? null : patches.clone(),
                slotBytes == null ? null : slotBytes.clone(),
                packBytes);
    }

    public byte[] toBytes() {
        int patched = patchCount();
        boolean packs = false;
        for (int i = 0; i < entries.length && !packs; i++) {
            packs = packed(i);
        }
        int digestsEnd = FormatConstants.PAGE_HEADER_BYTES + entries.length * FormatConstants.DIGEST_BYTES;
        List<Digest> objects = packs ? objects() : List.of();
        int length = patched == 0
                ? digestsEnd
                : packs
                        ? digestsEnd
                                + 4
                                + objects.size() * FormatConstants.PAGE_OBJECT_ENTRY_BYTES
                                + 4
                                + patched * FormatConstants.PAGE_PACKED_ENTRY_BYTES
                        : digestsEnd + 4 + patched * FormatConstants.PAGE_PATCH_ENTRY_BYTES;
        byte[] out = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PAGE_MAGIC);
        b.put((byte)
                (patched == 0
                        ? FormatConstants.REPOSITORY_FORMAT_VERSION
                        : packs ? FormatConstants.PAGE_VERSION_PACKS : FormatConstants.PAGE_VERSION_PATCHES));
        b.put(new byte[3]);
        b.putInt(entries.length);
        for (int i = 0; i < entries.length; i++) {
            entries[i].copyTo(out, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        if (patched == 0) {
            return out;
        }
        b.position(digestsEnd);
        if (!packs) {
            b.putInt(patched);
            for (int i = 0; i < entries.length; i++) {
                if (!patches[i].isZero()) {
                    b.putInt(i);
                    patches[i].copyTo(out, b.position());
                    b.position(b.position() + FormatConstants.DIGEST_BYTES);
                }
            }
            return out;
        }
        Map<Digest, Integer> ordinals = new HashMap<>();
        b.putInt(objects.size());
        for (Digest o : objects) {
            ordinals.put(o, ordinals.size());
            o.copyTo(out, b.position());
            b.position(b.position() + FormatConstants.DIGEST_BYTES);
            Integer size = packBytes.get(o);
            boolean pack = size != null; // an object is a pack or a patch, never both (parse refuses both)
            b.put((byte) (pack ? FormatConstants.PAGE_OBJECT_PACK : FormatConstants.PAGE_OBJECT_PATCH));
            b.put(new byte[3]);
            b.putInt(pack ? size : 0);
        }
        b.putInt(patched);
        for (int i = 0; i < entries.length; i++) {
            if (!patches[i].isZero()) {
                b.putInt(i);
                b.putInt(ordinals.get(patches[i]));
                b.putInt(slotBytes(i));
            }
        }
        return out;
    }

    /** The distinct patch and pack objects the entries name, in the order of their first entry. */
    private List<Digest> objects() {
        Map<Digest, Boolean> seen = new LinkedHashMap<>();
        for (int i = 0; i < entries.length; i++) {
            if (!patches[i].isZero()) {
                seen.putIfAbsent(patches[i], Boolean.TRUE);
            }
        }
        return List.copyOf(seen.keySet());
    }

    public static IndexPage parse(String key, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
        if (data.length < FormatConstants.PAGE_HEADER_BYTES || b.getInt() != FormatConstants.PAGE_MAGIC) {
            throw new CorruptObjectException(key, "not an index page");
        }
        int version = b.get();
        if (version != FormatConstants.REPOSITORY_FORMAT_VERSION
                && version != FormatConstants.PAGE_VERSION_PATCHES
                && version != FormatConstants.PAGE_VERSION_PACKS) {
            throw new CorruptObjectException(key, "index page version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        int n = b.getInt();
        long digestsEnd = FormatConstants.PAGE_HEADER_BYTES + (long) n * FormatConstants.DIGEST_BYTES;
        if (n < 0
                || (version == FormatConstants.REPOSITORY_FORMAT_VERSION && data.length != digestsEnd)
                || (version != FormatConstants.REPOSITORY_FORMAT_VERSION && data.length < digestsEnd + 4)) {
            throw new CorruptObjectException(key, "index page length does not match its " + n + " entries");
        }
        Digest[] entries = new Digest[n];
        for (int i = 0; i < n; i++) {
            entries[i] = Digest.readFrom(data, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        if (version == FormatConstants.REPOSITORY_FORMAT_VERSION) {
            return new IndexPage(entries, null, null, Map.of());
        }
        b.position((int) digestsEnd);
        if (version == FormatConstants.PAGE_VERSION_PACKS) {
            return parsePacked(key, data, b, entries);
        }
        int patched = b.getInt();
        if (patched <= 0
                || patched > n
                || data.length != digestsEnd + 4 + (long) patched * FormatConstants.PAGE_PATCH_ENTRY_BYTES) {
            throw new CorruptObjectException(key, "index page patch table does not match its length");
        }
        Digest[] patches = new Digest[n];
        Arrays.fill(patches, Digest.ZERO);
        int previous = -1;
        for (int k = 0; k < patched; k++) {
            int i = b.getInt();
            if (i <= previous || i >= n) {
                throw new CorruptObjectException(key, "index page patch table entry " + i + " is out of order");
            }
            Digest p = Digest.readFrom(data, b.position());
            if (p.isZero()) {
                throw new CorruptObjectException(key, "index page patch of entry " + i + " is the zero digest");
            }
            patches[i] = p;
            b.position(b.position() + FormatConstants.DIGEST_BYTES);
            previous = i;
        }
        return new IndexPage(entries, patches, null, Map.of());
    }

    /** The object and patch tables of a version 3 page (ADR 26), from {@code b}'s position. */
    private static IndexPage parsePacked(String key, byte[] data, ByteBuffer b, Digest[] entries) {
        int n = entries.length;
        int objectCount = b.getInt();
        if (objectCount <= 0
                || objectCount > n
                || (long) objectCount * FormatConstants.PAGE_OBJECT_ENTRY_BYTES + 4 > b.remaining()) {
            throw new CorruptObjectException(key, "index page object table does not match its length");
        }
        Digest[] objects = new Digest[objectCount];
        int[] sizes = new int[objectCount];
        boolean[] isPack = new boolean[objectCount];
        Set<Digest> distinct = new HashSet<>(); // an object is listed once, as one kind
        for (int k = 0; k < objectCount; k++) {
            objects[k] = Digest.readFrom(data, b.position());
            b.position(b.position() + FormatConstants.DIGEST_BYTES);
            int kind = b.get();
            b.position(b.position() + 3);
            sizes[k] = b.getInt();
            isPack[k] = kind == FormatConstants.PAGE_OBJECT_PACK;
            if (objects[k].isZero()
                    || !distinct.add(objects[k])
                    || (kind != FormatConstants.PAGE_OBJECT_PACK && kind != FormatConstants.PAGE_OBJECT_PATCH)
                    || (isPack[k] ? sizes[k] <= 0 : sizes[k] != 0)) {
                throw new CorruptObjectException(key, "index page object " + k + " is inconsistent");
            }
        }
        int patched = b.getInt();
        if (patched <= 0 || patched > n || b.remaining() != (long) patched * FormatConstants.PAGE_PACKED_ENTRY_BYTES) {
            throw new CorruptObjectException(key, "index page patch table does not match its length");
        }
        Digest[] patches = new Digest[n];
        Arrays.fill(patches, Digest.ZERO);
        int[] slots = new int[n];
        long[] live = new long[objectCount];
        boolean[] named = new boolean[objectCount];
        Map<Digest, Integer> packBytes = new HashMap<>();
        int previous = -1;
        for (int k = 0; k < patched; k++) {
            int i = b.getInt();
            int object = b.getInt();
            int slot = b.getInt();
            if (i <= previous || i >= n) {
                throw new CorruptObjectException(key, "index page patch table entry " + i + " is out of order");
            }
            if (object < 0 || object >= objectCount || (isPack[object] ? slot <= 0 : slot != 0)) {
                throw new CorruptObjectException(key, "index page patch of entry " + i + " names a bad object or slot");
            }
            patches[i] = objects[object];
            slots[i] = slot;
            live[object] += slot;
            named[object] = true;
            previous = i;
        }
        for (int k = 0; k < objectCount; k++) {
            if (!named[k] || (isPack[k] && live[k] > sizes[k])) {
                throw new CorruptObjectException(
                        key, "index page object " + k + " is not named or smaller than its slots");
            }
            if (isPack[k]) {
                packBytes.put(objects[k], sizes[k]);
            }
        }
        return new IndexPage(entries, patches, slots, packBytes);
    }
}
