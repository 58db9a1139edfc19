package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A page of a disk index: the digests of consecutive chunks. Pages are content-addressed objects,
 * so a page that an incremental does not change is the same object as its parent's and costs
 * nothing to write or ship.
 *
 * <p>An entry may also name a <em>patch</em> ({@link ChunkPatch}, ADR 15): the chunk then reads as
 * its base chunk ({@link #get}) with the patch's ranges written over it. A page with no patch is
 * written as version 1, byte for byte as before patches existed; a page with patches is version
 * 2, which a reader that predates patches refuses ("upgrade Tidemark") instead of restoring the
 * base alone.
 */
public final class IndexPage {

    private final Digest[] entries;
    /** Patch digests by entry; {@link Digest#ZERO} (or a null array: none at all) for no patch. */
    private Digest[] patches;

    public IndexPage(int size) {
        entries = new Digest[size];
        Arrays.fill(entries, Digest.ZERO);
    }

    private IndexPage(Digest[] entries, Digest[] patches) {
        this.entries = entries;
        this.patches = patches;
    }

    public int size() {
        return entries.length;
    }

    /** The digest of entry {@code i}'s chunk, or of its base chunk when it has a {@link #patch}. */
    public Digest get(int i) {
        return entries[i];
    }

    /** The patch of entry {@code i}, or {@link Digest#ZERO} when it reads as {@link #get} alone. */
    public Digest patch(int i) {
        return patches == null ? Digest.ZERO : patches[i];
    }

    /** Sets entry {@code i} to chunk {@code d}, without a patch. */
    public void set(int i, Digest d) {
        entries[i] = d;
        if (patches != null) {
            patches[i] = Digest.ZERO;
        }
    }

    /** Sets entry {@code i} to base chunk {@code base} with {@code patch} over it. */
    public void set(int i, Digest base, Digest patch) {
        if (patch.isZero()) {
            set(i, base);
            return;
        }
        if (patches == null) {
            patches = new Digest[entries.length];
            Arrays.fill(patches, Digest.ZERO);
        }
        entries[i] = base;
        patches[i] = patch;
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
        return new IndexPage(entries.clone(), patches == null ? null : patches.clone());
    }

    public byte[] toBytes() {
        int patched = patchCount();
        int digestsEnd = FormatConstants.PAGE_HEADER_BYTES + entries.length * FormatConstants.DIGEST_BYTES;
        int length = patched == 0 ? digestsEnd : digestsEnd + 4 + patched * FormatConstants.PAGE_PATCH_ENTRY_BYTES;
        byte[] out = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PAGE_MAGIC);
        b.put((byte) (patched == 0 ? FormatConstants.REPOSITORY_FORMAT_VERSION : FormatConstants.PAGE_VERSION_PATCHES));
        b.put(new byte[3]);
        b.putInt(entries.length);
        for (int i = 0; i < entries.length; i++) {
            entries[i].copyTo(out, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        if (patched > 0) {
            b.position(digestsEnd);
            b.putInt(patched);
            for (int i = 0; i < entries.length; i++) {
                if (!patches[i].isZero()) {
                    b.putInt(i);
                    patches[i].copyTo(out, b.position());
                    b.position(b.position() + FormatConstants.DIGEST_BYTES);
                }
            }
        }
        return out;
    }

    public static IndexPage parse(String key, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
        if (data.length < FormatConstants.PAGE_HEADER_BYTES || b.getInt() != FormatConstants.PAGE_MAGIC) {
            throw new CorruptObjectException(key, "not an index page");
        }
        int version = b.get();
        if (version != FormatConstants.REPOSITORY_FORMAT_VERSION && version != FormatConstants.PAGE_VERSION_PATCHES) {
            throw new CorruptObjectException(key, "index page version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        int n = b.getInt();
        long digestsEnd = FormatConstants.PAGE_HEADER_BYTES + (long) n * FormatConstants.DIGEST_BYTES;
        if (n < 0
                || (version == FormatConstants.REPOSITORY_FORMAT_VERSION && data.length != digestsEnd)
                || (version == FormatConstants.PAGE_VERSION_PATCHES && data.length < digestsEnd + 4)) {
            throw new CorruptObjectException(key, "index page length does not match its " + n + " entries");
        }
        Digest[] entries = new Digest[n];
        for (int i = 0; i < n; i++) {
            entries[i] = Digest.readFrom(data, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        if (version == FormatConstants.REPOSITORY_FORMAT_VERSION) {
            return new IndexPage(entries, null);
        }
        b.position((int) digestsEnd);
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
        return new IndexPage(entries, patches);
    }
}
