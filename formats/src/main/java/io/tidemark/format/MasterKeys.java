package io.tidemark.format;

import io.tidemark.core.CorruptObjectException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The two random master keys of an encrypted repository: the <em>data key</em> encrypts every
 * object with AES-256-GCM, the <em>id key</em> names content by HMAC-SHA256 (so names reveal
 * nothing about the plaintext, and equal content still gets one name within the repository).
 * Replicas of a repository share its master keys. Thread-safe. Never printed: {@link #toString()}
 * is redacted and no method puts key bytes in a message.
 */
public final class MasterKeys {

    private static final String AES_GCM = "AES/GCM/NoPadding";
    private static final String HMAC_SHA256 = "HmacSHA256";

    private final SecretKeySpec dataKey;
    private final SecretKeySpec idKey;
    private final SecureRandom random;
    private final ThreadLocal<Mac> macs;

    private MasterKeys(byte[] data, byte[] id, SecureRandom random) {
        this.dataKey = new SecretKeySpec(data, "AES");
        this.idKey = new SecretKeySpec(id, HMAC_SHA256);
        this.random = random;
        this.macs = ThreadLocal.withInitial(this::newMac);
    }

    /** New random master keys; {@code random} also draws every object's nonce. */
    public static MasterKeys generate(SecureRandom random) {
        byte[] data = new byte[FormatConstants.MASTER_KEY_BYTES];
        byte[] id = new byte[FormatConstants.MASTER_KEY_BYTES];
        random.nextBytes(data);
        random.nextBytes(id);
        MasterKeys keys = new MasterKeys(data, id, random);
        Arrays.fill(data, (byte) 0);
        Arrays.fill(id, (byte) 0);
        return keys;
    }

    /** The keys from their 64-byte serialisation (data key, then id key), as unwrapped from a key object. */
    static MasterKeys fromBytes(byte[] both, SecureRandom random) {
        if (both.length != 2 * FormatConstants.MASTER_KEY_BYTES) {
            throw new IllegalArgumentException("master keys have " + 2 * FormatConstants.MASTER_KEY_BYTES + " bytes");
        }
        return new MasterKeys(
                Arrays.copyOfRange(both, 0, FormatConstants.MASTER_KEY_BYTES),
                Arrays.copyOfRange(both, FormatConstants.MASTER_KEY_BYTES, both.length),
                random);
    }

    /** Data key then id key; the caller wraps and then clears it. */
    byte[] toBytes() {
        byte[] both = new byte[2 * FormatConstants.MASTER_KEY_BYTES];
        System.arraycopy(dataKey.getEncoded(), 0, both, 0, FormatConstants.MASTER_KEY_BYTES);
        System.arraycopy(
                idKey.getEncoded(), 0, both, FormatConstants.MASTER_KEY_BYTES, FormatConstants.MASTER_KEY_BYTES);
        return both;
    }

    /** The name of content {@code data[offset, offset+length)}: HMAC-SHA256 under the id key. */
    public Digest name(byte[] data, int offset, int length) {
        Mac mac = macs.get();
        mac.update(data, offset, length);
        return Digest.of(mac.doFinal());
    }

    public Digest name(byte[] data) {
        return name(data, 0, data.length);
    }

    /**
     * A value that identifies these keys without revealing them: HMAC-SHA256 of a constant under the
     * id key, hex. Stored in the config, it tells which key objects belong to the repository and
     * whether two locations hold the same repository.
     */
    public String keyCheck() {
        return name(FormatConstants.KEY_CHECK_INPUT.getBytes(StandardCharsets.US_ASCII))
                .hex();
    }

    /** Fills {@code nonce} with fresh random bytes. */
    void nextNonce(byte[] nonce) {
        random.nextBytes(nonce);
    }

    /**
     * Encrypts {@code in[inOffset, inOffset+length)} into {@code out} at {@code outOffset} (ciphertext
     * then tag).
     */
    void seal(byte[] nonce, byte[] aad, byte[] in, int inOffset, int length, byte[] out, int outOffset) {
        try {
            Cipher c = Cipher.getInstance(AES_GCM);
            c.init(Cipher.ENCRYPT_MODE, dataKey, new GCMParameterSpec(FormatConstants.GCM_TAG_BYTES * 8, nonce));
            c.updateAAD(aad);
            c.doFinal(in, inOffset, length, out, outOffset);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
    }

    /**
     * Decrypts and authenticates {@code in[offset, offset+length)} (ciphertext then tag).
     *
     * @param key the object's key, named in the error
     * @throws CorruptObjectException if the tag does not match: the object was changed, moved, or
     *     belongs to another repository
     */
    byte[] open(String key, byte[] nonce, byte[] aad, byte[] in, int offset, int length) {
        try {
            Cipher c = Cipher.getInstance(AES_GCM);
            c.init(Cipher.DECRYPT_MODE, dataKey, new GCMParameterSpec(FormatConstants.GCM_TAG_BYTES * 8, nonce));
            c.updateAAD(aad);
            return c.doFinal(in, offset, length);
        } catch (AEADBadTagException e) {
            throw new CorruptObjectException(
                    key,
                    "authentication failed (AES-GCM tag mismatch): the object was modified, stored under another"
                            + " name, or belongs to another repository");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        }
    }

    private Mac newMac() {
        try {
            Mac mac = Mac.getInstance(HMAC_SHA256);
            mac.init(idKey);
            return mac;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HMAC-SHA256 is not available in this JVM", e);
        }
    }

    @Override
    public String toString() {
        return "MasterKeys[redacted]";
    }
}
