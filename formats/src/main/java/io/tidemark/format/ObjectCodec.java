package io.tidemark.format;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdException;
import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Framing of every content-addressed object: a 12-byte header (see {@link FormatConstants}) then
 * the payload, zstd-compressed when that saves space. Decoding checks the header, decompresses,
 * and verifies that the plaintext hashes to the digest the object is named by.
 */
public final class ObjectCodec {

    private ObjectCodec() {}

    /** Frames {@code plain[0, length)}, compressing it when that makes it smaller. */
    public static byte[] encode(byte[] plain, int length) {
        byte[] compressed = Zstd.compress(slice(plain, length), FormatConstants.ZSTD_LEVEL);
        boolean useZstd = compressed.length < length;
        int payload = useZstd ? compressed.length : length;
        ByteBuffer out = ByteBuffer.allocate(FormatConstants.OBJECT_HEADER_BYTES + payload)
                .order(ByteOrder.BIG_ENDIAN);
        out.putInt(FormatConstants.OBJECT_MAGIC);
        out.put((byte) FormatConstants.OBJECT_VERSION);
        out.put(useZstd ? FormatConstants.CODEC_ZSTD : FormatConstants.CODEC_NONE);
        out.put((byte) 0); // flags: bit 0 will mark encryption
        out.put((byte) 0); // reserved
        out.putInt(length);
        if (useZstd) {
            out.put(compressed);
        } else {
            out.put(plain, 0, length);
        }
        return out.array();
    }

    public static byte[] encode(byte[] plain) {
        return encode(plain, plain.length);
    }

    /**
     * The plaintext of {@code object}, verified against {@code expected}.
     *
     * @param key the object's key, named in errors
     * @throws CorruptObjectException if the framing is broken or the digest does not match
     */
    public static byte[] decode(String key, byte[] object, Digest expected) {
        byte[] plain = decodeUnverified(key, object);
        Digest actual = Digest.sha256(plain);
        if (!actual.equals(expected)) {
            throw new CorruptObjectException(key, "content hashes to " + actual.hex() + ", expected " + expected.hex());
        }
        return plain;
    }

    static byte[] decodeUnverified(String key, byte[] object) {
        if (object.length < FormatConstants.OBJECT_HEADER_BYTES) {
            throw new CorruptObjectException(key, "truncated: " + object.length + " bytes");
        }
        ByteBuffer in = ByteBuffer.wrap(object).order(ByteOrder.BIG_ENDIAN);
        if (in.getInt() != FormatConstants.OBJECT_MAGIC) {
            throw new CorruptObjectException(key, "bad magic");
        }
        int version = in.get();
        if (version != FormatConstants.OBJECT_VERSION) {
            throw new CorruptObjectException(
                    key,
                    "object version " + version + " is not supported by this Tidemark (knows "
                            + FormatConstants.OBJECT_VERSION + "); upgrade");
        }
        byte codec = in.get();
        byte flags = in.get();
        in.get();
        int length = in.getInt();
        if (flags != 0) {
            throw new CorruptObjectException(key, "encrypted objects need a key (flags " + flags + ")");
        }
        if (length < 0) {
            throw new CorruptObjectException(key, "negative length");
        }
        int payload = object.length - FormatConstants.OBJECT_HEADER_BYTES;
        if (codec == FormatConstants.CODEC_NONE) {
            if (payload != length) {
                throw new CorruptObjectException(key, "length " + payload + " != header " + length);
            }
            byte[] plain = new byte[length];
            System.arraycopy(object, FormatConstants.OBJECT_HEADER_BYTES, plain, 0, length);
            return plain;
        }
        if (codec != FormatConstants.CODEC_ZSTD) {
            throw new CorruptObjectException(key, "unknown codec " + codec);
        }
        byte[] plain = new byte[length];
        try {
            long n = Zstd.decompressByteArray(plain, 0, length, object, FormatConstants.OBJECT_HEADER_BYTES, payload);
            if (n != length) {
                throw new CorruptObjectException(key, "decompressed " + n + " bytes, header says " + length);
            }
        } catch (ZstdException e) {
            throw new CorruptObjectException(key, "zstd: " + e.getMessage());
        }
        return plain;
    }

    private static byte[] slice(byte[] data, int length) {
        if (length == data.length) {
            return data;
        }
        byte[] copy = new byte[length];
        System.arraycopy(data, 0, copy, 0, length);
        return copy;
    }
}
