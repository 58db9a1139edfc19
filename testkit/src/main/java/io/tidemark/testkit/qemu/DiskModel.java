package io.tidemark.testkit.qemu;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The bytes a disk should hold, kept in memory next to the real disk so a test knows the expected
 * content at any moment independently of the system under test. {@link QemuVm#write} keeps its
 * disks' models in step. Not thread-safe; disks up to 2 GiB.
 */
public final class DiskModel {

    private final byte[] bytes;

    /** A disk of {@code size} zero bytes, like a fresh qcow2. */
    public DiskModel(long size) {
        if (size < 0 || size > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("DiskModel holds at most 2 GiB, not " + size + " bytes");
        }
        this.bytes = new byte[(int) size];
    }

    private DiskModel(byte[] bytes) {
        this.bytes = bytes;
    }

    public long size() {
        return bytes.length;
    }

    /** Fills {@code [offset, offset + length)} with {@code patternByte}, like {@code qemu-io write -P}. */
    public void write(long offset, int length, int patternByte) {
        check(offset, length);
        Arrays.fill(bytes, (int) offset, (int) offset + length, (byte) patternByte);
    }

    /** Zeroes {@code [offset, offset + length)}, like {@code qemu-io write -z}. */
    public void writeZeroes(long offset, int length) {
        write(offset, length, 0);
    }

    /** Copies {@code data} in at {@code offset}. */
    public void write(long offset, byte[] data) {
        check(offset, data.length);
        System.arraycopy(data, 0, bytes, (int) offset, data.length);
    }

    /** A copy of {@code [offset, offset + length)}. */
    public byte[] read(long offset, int length) {
        check(offset, length);
        return Arrays.copyOfRange(bytes, (int) offset, (int) offset + length);
    }

    /** A copy of the whole disk. */
    public byte[] bytes() {
        return bytes.clone();
    }

    /** An independent copy: the expected content at this moment. */
    public DiskModel copy() {
        return new DiskModel(bytes.clone());
    }

    /** Lower-case hex SHA-256 of the whole disk. */
    public String sha256() {
        return sha256(bytes);
    }

    /** Lower-case hex SHA-256 of {@code data}, to compare with {@link #sha256()}. */
    public static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    private void check(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > bytes.length) {
            throw new IllegalArgumentException(
                    "range " + offset + "+" + length + " is outside the disk of " + bytes.length + " bytes");
        }
    }

    @Override
    public String toString() {
        return "DiskModel[" + bytes.length + " bytes, sha256 " + sha256().substring(0, 12) + "]";
    }
}
