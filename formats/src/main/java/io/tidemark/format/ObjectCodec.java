package io.tidemark.format;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdException;
import io.tidemark.core.CorruptObjectException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Framing of every object but the config and key objects: a 12-byte header (see {@link
 * FormatConstants}) then the payload, zstd-compressed when that saves space. In an encrypted
 * repository the payload is then sealed with AES-256-GCM ({@link FormatConstants#FLAG_ENCRYPTED}):
 * a random nonce follows the header and a tag ends the object, and the header and the object's key
 * are authenticated with it. Decoding checks the header, decrypts, decompresses, and verifies that
 * the plaintext has the name (SHA-256, or HMAC-SHA256 when encrypted) the object is stored under.
 */
public final class ObjectCodec {

    private ObjectCodec() {}

    /** Frames {@code plain[0, length)}, compressing it when that makes it smaller. */
    public static byte[] encode(byte[] plain, int length) {
        Compressor c = Compressor.take();
        try {
            int compressed = c.compress(plain, length);
            boolean useZstd = compressed < length;
            int payload = useZstd ? compressed : length;
            byte[] out = new byte[FormatConstants.OBJECT_HEADER_BYTES + payload];
            putHeader(ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN), useZstd, (byte) 0, length);
            System.arraycopy(useZstd ? c.out : plain, 0, out, FormatConstants.OBJECT_HEADER_BYTES, payload);
            return out;
        } finally {
            Compressor.give(c);
        }
    }

    public static byte[] encode(byte[] plain) {
        return encode(plain, plain.length);
    }

    /**
     * Frames {@code plain[0, length)} for storage under {@code key}: compressed when that helps, then
     * encrypted under {@code keys} with the header and {@code key} authenticated. Without keys
     * (null), the same as {@link #encode(byte[], int)}.
     */
    public static byte[] encode(byte[] plain, int length, String key, MasterKeys keys) {
        if (keys == null) {
            return encode(plain, length);
        }
        Compressor c = Compressor.take();
        try {
            int compressed = c.compress(plain, length);
            boolean useZstd = compressed < length;
            byte[] payload = useZstd ? c.out : plain;
            int payloadLength = useZstd ? compressed : length;
            byte[] out = new byte
                    [FormatConstants.OBJECT_HEADER_BYTES + FormatConstants.ENCRYPTION_OVERHEAD_BYTES + payloadLength];
            ByteBuffer header = ByteBuffer.wrap(out).order(ByteOrder.BIG_ENDIAN);
            putHeader(header, useZstd, FormatConstants.FLAG_ENCRYPTED, length);
            byte[] nonce = new byte[FormatConstants.GCM_NONCE_BYTES];
            keys.nextNonce(nonce);
            System.arraycopy(nonce, 0, out, FormatConstants.OBJECT_HEADER_BYTES, nonce.length);
            keys.seal(
                    nonce,
                    aad(out, key),
                    payload,
                    0,
                    payloadLength,
                    out,
                    FormatConstants.OBJECT_HEADER_BYTES + FormatConstants.GCM_NONCE_BYTES);
            return out;
        } finally {
            Compressor.give(c);
        }
    }

    /**
     * A zstd context and its output buffer, reused across objects: a fresh context per object (what
     * {@code Zstd.compress} does) costs an allocation and initialisation of its tables each time,
     * and a fresh output array per object is garbage. At most {@link #POOLED} (two per core: about
     * as many as compress at once) are kept, so the heap they hold stays small (a pooled buffer
     * lives in the old generation); more are made while more threads compress at once, and closed
     * when given back to a full pool.
     */
    private static final class Compressor {
        static final int POOLED = 2 * Runtime.getRuntime().availableProcessors();
        private static final ConcurrentLinkedDeque<Compressor> POOL = new ConcurrentLinkedDeque<>();
        private static final AtomicInteger POOL_SIZE = new AtomicInteger();

        final ZstdCompressCtx ctx = new ZstdCompressCtx().setLevel(FormatConstants.ZSTD_LEVEL);
        byte[] out = new byte[0];

        static Compressor take() {
            Compressor c = POOL.pollFirst();
            if (c == null) {
                return new Compressor();
            }
            POOL_SIZE.decrementAndGet();
            return c;
        }

        static void give(Compressor c) {
            if (POOL_SIZE.incrementAndGet() <= POOLED) {
                POOL.addFirst(c);
            } else {
                POOL_SIZE.decrementAndGet();
                c.ctx.close();
            }
        }

        /** Compresses {@code plain[0, length)} into {@link #out}; returns the compressed length. */
        int compress(byte[] plain, int length) {
            int bound = Math.toIntExact(Zstd.compressBound(length));
            if (out.length < bound) {
                out = new byte[bound];
            }
            return ctx.compressByteArray(out, 0, bound, plain, 0, length);
        }
    }

    private static void putHeader(ByteBuffer out, boolean zstd, byte flags, int length) {
        out.putInt(FormatConstants.OBJECT_MAGIC);
        out.put((byte) FormatConstants.OBJECT_VERSION);
        out.put(zstd ? FormatConstants.CODEC_ZSTD : FormatConstants.CODEC_NONE);
        out.put(flags);
        out.put((byte) 0); // reserved
        out.putInt(length);
    }

    /** Additional authenticated data: the 12-byte header, then the object's key in UTF-8. */
    private static byte[] aad(byte[] object, String key) {
        byte[] name = key.getBytes(StandardCharsets.UTF_8);
        byte[] aad = new byte[FormatConstants.OBJECT_HEADER_BYTES + name.length];
        System.arraycopy(object, 0, aad, 0, FormatConstants.OBJECT_HEADER_BYTES);
        System.arraycopy(name, 0, aad, FormatConstants.OBJECT_HEADER_BYTES, name.length);
        return aad;
    }

    /**
     * The plaintext of unencrypted {@code object}, verified against {@code expected}.
     *
     * @param key the object's key, named in errors
     * @throws CorruptObjectException if the framing is broken or the digest does not match
     */
    public static byte[] decode(String key, byte[] object, Digest expected) {
        return decode(key, object, expected, null);
    }

    /**
     * The plaintext of {@code object}, stored under {@code key}, verified against the name {@code
     * expected}: SHA-256 without keys, HMAC-SHA256 under the id key with them.
     *
     * @param keys the repository's master keys, or null for an unencrypted repository
     * @throws CorruptObjectException if the framing is broken, the object fails authentication, is
     *     not encrypted when the repository is (or the reverse), or its content has another name
     */
    public static byte[] decode(String key, byte[] object, Digest expected, MasterKeys keys) {
        byte[] plain = decodeUnverified(key, object, keys);
        Digest actual = keys == null ? Digest.sha256(plain) : keys.name(plain);
        if (!actual.equals(expected)) {
            throw new CorruptObjectException(key, "content hashes to " + actual.hex() + ", expected " + expected.hex());
        }
        return plain;
    }

    /**
     * The plaintext of an object not named by its content (a manifest): with keys, authenticated
     * by its tag, which binds it to {@code key}; without, only its framing is checked.
     */
    public static byte[] decodeNamed(String key, byte[] object, MasterKeys keys) {
        return decodeUnverified(key, object, keys);
    }

    static byte[] decodeUnverified(String key, byte[] object, MasterKeys keys) {
        Payload p = open(key, object, object.length, keys);
        byte[] plain = new byte[p.length()];
        p.plainInto(key, plain);
        return plain;
    }

    /**
     * {@link #decode(String, byte[], Digest, MasterKeys)} into a buffer the caller reuses: the
     * plaintext of {@code object[0, objectLength)} goes to {@code into[0, n)} and is verified against
     * {@code expected}; returns n. A restore decodes every chunk into one of a few pooled buffers
     * instead of allocating one per chunk.
     *
     * @throws CorruptObjectException as decode does, and when the plaintext would not fit {@code into}
     */
    public static int decodeInto(
            String key, byte[] object, int objectLength, Digest expected, MasterKeys keys, byte[] into) {
        Payload p = open(key, object, objectLength, keys);
        if (p.length() > into.length) {
            throw new CorruptObjectException(
                    key, "header says " + p.length() + " bytes of content, more than the " + into.length + " expected");
        }
        p.plainInto(key, into);
        Digest actual = keys == null ? Digest.sha256(into, 0, p.length()) : keys.name(into, 0, p.length());
        if (!actual.equals(expected)) {
            throw new CorruptObjectException(key, "content hashes to " + actual.hex() + ", expected " + expected.hex());
        }
        return p.length();
    }

    /**
     * Checks {@code object} as {@link #decode(String, byte[], Digest, MasterKeys)} does without
     * keeping its plaintext: an object stored uncompressed is hashed where it lies, not copied
     * first (what the replicator does before shipping each object).
     *
     * @throws CorruptObjectException as decode does
     */
    public static void verify(String key, byte[] object, Digest expected, MasterKeys keys) {
        Payload p = open(key, object, object.length, keys);
        Digest actual;
        if (p.codec() == FormatConstants.CODEC_NONE) {
            if (p.size() != p.length()) {
                throw new CorruptObjectException(key, "length " + p.size() + " != header " + p.length());
            }
            actual = keys == null
                    ? Digest.sha256(p.bytes(), p.offset(), p.length())
                    : keys.name(p.bytes(), p.offset(), p.length());
        } else {
            byte[] plain = new byte[p.length()];
            p.plainInto(key, plain);
            actual = keys == null ? Digest.sha256(plain) : keys.name(plain);
        }
        if (!actual.equals(expected)) {
            throw new CorruptObjectException(key, "content hashes to " + actual.hex() + ", expected " + expected.hex());
        }
    }

    /** A checked, decrypted payload: {@code length} plaintext bytes once decompressed per {@code codec}. */
    private record Payload(byte codec, int length, byte[] bytes, int offset, int size) {

        void plainInto(String key, byte[] plain) {
            if (codec == FormatConstants.CODEC_NONE) {
                if (size != length) {
                    throw new CorruptObjectException(key, "length " + size + " != header " + length);
                }
                System.arraycopy(bytes, offset, plain, 0, length);
                return;
            }
            if (codec != FormatConstants.CODEC_ZSTD) {
                throw new CorruptObjectException(key, "unknown codec " + codec);
            }
            try {
                long n = Zstd.decompressByteArray(plain, 0, length, bytes, offset, size);
                if (n != length) {
                    throw new CorruptObjectException(key, "decompressed " + n + " bytes, header says " + length);
                }
            } catch (ZstdException e) {
                throw new CorruptObjectException(key, "zstd: " + e.getMessage());
            }
        }
    }

    private static Payload open(String key, byte[] object, int objectLength, MasterKeys keys) {
        if (objectLength < FormatConstants.OBJECT_HEADER_BYTES) {
            throw new CorruptObjectException(key, "truncated: " + objectLength + " bytes");
        }
        ByteBuffer in = ByteBuffer.wrap(object, 0, objectLength).order(ByteOrder.BIG_ENDIAN);
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
        if (length < 0) {
            throw new CorruptObjectException(key, "negative length");
        }
        if ((flags & ~FormatConstants.FLAG_ENCRYPTED) != 0) {
            throw new CorruptObjectException(key, "unknown flags " + flags + "; upgrade Tidemark");
        }
        boolean encrypted = (flags & FormatConstants.FLAG_ENCRYPTED) != 0;
        if (encrypted && keys == null) {
            throw new CorruptObjectException(
                    key, "the object is encrypted but the repository was opened without keys (flags " + flags + ")");
        }
        if (!encrypted && keys != null) {
            throw new CorruptObjectException(key, "the object is not encrypted, but the repository is");
        }
        if (!encrypted) {
            return new Payload(
                    codec,
                    length,
                    object,
                    FormatConstants.OBJECT_HEADER_BYTES,
                    objectLength - FormatConstants.OBJECT_HEADER_BYTES);
        }
        int sealed = objectLength - FormatConstants.OBJECT_HEADER_BYTES - FormatConstants.GCM_NONCE_BYTES;
        if (sealed < FormatConstants.GCM_TAG_BYTES) {
            throw new CorruptObjectException(key, "truncated: " + objectLength + " bytes");
        }
        byte[] nonce = new byte[FormatConstants.GCM_NONCE_BYTES];
        System.arraycopy(object, FormatConstants.OBJECT_HEADER_BYTES, nonce, 0, nonce.length);
        byte[] payload = keys.open(
                key,
                nonce,
                aad(object, key),
                object,
                FormatConstants.OBJECT_HEADER_BYTES + FormatConstants.GCM_NONCE_BYTES,
                sealed);
        return new Payload(codec, length, payload, 0, payload.length);
    }
}
