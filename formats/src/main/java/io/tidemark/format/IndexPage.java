package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A page of a disk index: the digests of consecutive chunks. Pages are content-addressed objects,
 * so a page that an incremental does not change is the same object as its parent's and costs
 * nothing to write or ship.
 */
public final class IndexPage {

    private final Digest[] entries;

    public IndexPage(int size) {
        entries = new Digest[size];
        Arrays.fill(entries, Digest.ZERO);
    }

    private IndexPage(Digest[] entries) {
        this.entries = entries;
    }

    public int size() {
        return entries.length;
    }

    public Digest get(int i) {
        return entries[i];
    }

    public void set(int i, Digest d) {
        entries[i] = d;
    }

    public IndexPage copy() {
        return new IndexPage(entries.clone());
    }

    public byte[] toBytes() {
        byte[] out = new byte[FormatConstants.PAGE_HEADER_BYTES + entries.length * FormatConstants.DIGEST_BYTES];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.PAGE_MAGIC);
        b.put((byte) FormatConstants.REPOSITORY_FORMAT_VERSION);
        b.put(new byte[3]);
        b.putInt(entries.length);
        for (int i = 0; i < entries.length; i++) {
            entries[i].copyTo(out, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        return out;
    }

    public static IndexPage parse(String key, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
        if (data.length < FormatConstants.PAGE_HEADER_BYTES || b.getInt() != FormatConstants.PAGE_MAGIC) {
            throw new CorruptObjectException(key, "not an index page");
        }
        int version = b.get();
        if (version != FormatConstants.REPOSITORY_FORMAT_VERSION) {
            throw new CorruptObjectException(key, "index page version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        int n = b.getInt();
        if (n < 0 || data.length != FormatConstants.PAGE_HEADER_BYTES + (long) n * FormatConstants.DIGEST_BYTES) {
            throw new CorruptObjectException(key, "index page length does not match its " + n + " entries");
        }
        Digest[] entries = new Digest[n];
        for (int i = 0; i < n; i++) {
            entries[i] = Digest.readFrom(data, FormatConstants.PAGE_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        return new IndexPage(entries);
    }
}
