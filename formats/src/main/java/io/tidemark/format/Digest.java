package io.tidemark.format;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/** A SHA-256 digest. {@link #ZERO} (all-zero bytes) denotes an all-zero chunk that is never stored. */
public final class Digest implements Comparable<Digest> {

    public static final Digest ZERO = new Digest(new byte[FormatConstants.DIGEST_BYTES]);

    private static final HexFormat HEX = HexFormat.of();
    private final byte[] bytes;

    private Digest(byte[] bytes) {
        if (bytes.length != FormatConstants.DIGEST_BYTES) {
            throw new IllegalArgumentException("a digest has 32 bytes, got " + bytes.length);
        }
        this.bytes = bytes;
    }

    public static Digest of(byte[] bytes) {
        return new Digest(bytes.clone());
    }

    public static Digest fromHex(String hex) {
        return new Digest(HEX.parseHex(hex));
    }

    /** SHA-256 of {@code data[offset, offset+length)}. */
    public static Digest sha256(byte[] data, int offset, int length) {
        MessageDigest md = newSha256();
        md.update(data, offset, length);
        return new Digest(md.digest());
    }

    public static Digest sha256(byte[] data) {
        return sha256(data, 0, data.length);
    }

    public static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }

    public boolean isZero() {
        return equals(ZERO);
    }

    public byte[] bytes() {
        return bytes.clone();
    }

    void copyTo(byte[] dst, int offset) {
        System.arraycopy(bytes, 0, dst, offset, bytes.length);
    }

    static Digest readFrom(byte[] src, int offset) {
        return new Digest(Arrays.copyOfRange(src, offset, offset + FormatConstants.DIGEST_BYTES));
    }

    public String hex() {
        return HEX.formatHex(bytes);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Digest d && Arrays.equals(bytes, d.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    @Override
    public int compareTo(Digest o) {
        return Arrays.compareUnsigned(bytes, o.bytes);
    }

    @Override
    public String toString() {
        return hex();
    }
}
