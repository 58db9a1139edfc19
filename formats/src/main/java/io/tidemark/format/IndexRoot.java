package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The root of one disk's index: its geometry and the digests of its pages, in order. Chunk
 * {@code n} is entry {@code n % entriesPerPage} of page {@code n / entriesPerPage}.
 */
public record IndexRoot(long diskSize, int chunkSize, int entriesPerPage, List<Digest> pages) {

    public IndexRoot {
        pages = List.copyOf(pages);
        if (pages.size() != pageCount(diskSize, chunkSize, entriesPerPage)) {
            throw new IllegalArgumentException("a disk of " + diskSize + " bytes needs "
                    + pageCount(diskSize, chunkSize, entriesPerPage) + " pages, got " + pages.size());
        }
    }

    public static long chunkCount(long diskSize, int chunkSize) {
        return (diskSize + chunkSize - 1) / chunkSize;
    }

    public static int pageCount(long diskSize, int chunkSize, int entriesPerPage) {
        return Math.toIntExact((chunkCount(diskSize, chunkSize) + entriesPerPage - 1) / entriesPerPage);
    }

    public long chunkCount() {
        return chunkCount(diskSize, chunkSize);
    }

    /** Number of entries in page {@code p} (the last page may be short). */
    public int entriesInPage(int p) {
        long remaining = chunkCount() - (long) p * entriesPerPage;
        return (int) Math.min(entriesPerPage, remaining);
    }

    public byte[] toBytes() {
        byte[] out = new byte[FormatConstants.ROOT_HEADER_BYTES + pages.size() * FormatConstants.DIGEST_BYTES];
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
        b.putInt(FormatConstants.ROOT_MAGIC);
        b.put((byte) FormatConstants.REPOSITORY_FORMAT_VERSION);
        b.put(new byte[3]);
        b.putLong(diskSize);
        b.putInt(chunkSize);
        b.putInt(entriesPerPage);
        b.putInt(pages.size());
        for (int i = 0; i < pages.size(); i++) {
            pages.get(i).copyTo(out, FormatConstants.ROOT_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        return out;
    }

    public static IndexRoot parse(String key, byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.BIG_ENDIAN);
        if (data.length < FormatConstants.ROOT_HEADER_BYTES || b.getInt() != FormatConstants.ROOT_MAGIC) {
            throw new CorruptObjectException(key, "not an index root");
        }
        int version = b.get();
        if (version != FormatConstants.REPOSITORY_FORMAT_VERSION) {
            throw new CorruptObjectException(key, "index root version " + version + " unknown; upgrade Tidemark");
        }
        b.position(8);
        long diskSize = b.getLong();
        int chunkSize = b.getInt();
        int perPage = b.getInt();
        int n = b.getInt();
        if (diskSize < 0
                || chunkSize <= 0
                || perPage <= 0
                || n < 0
                || data.length != FormatConstants.ROOT_HEADER_BYTES + (long) n * FormatConstants.DIGEST_BYTES) {
            throw new CorruptObjectException(key, "index root header is inconsistent");
        }
        Digest[] pages = new Digest[n];
        for (int i = 0; i < n; i++) {
            pages[i] = Digest.readFrom(data, FormatConstants.ROOT_HEADER_BYTES + i * FormatConstants.DIGEST_BYTES);
        }
        try {
            return new IndexRoot(diskSize, chunkSize, perPage, List.of(pages));
        } catch (IllegalArgumentException e) {
            throw new CorruptObjectException(key, e.getMessage());
        }
    }
}
