package io.tidemark.format;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.CorruptObjectException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.Optional;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * A key object ({@code keys/<id>}): the repository's {@link MasterKeys} encrypted with AES-256-GCM
 * under a key derived from a passphrase. A repository has one per passphrase that opens it (two,
 * briefly, while a passphrase is changed). Nothing here is secret without the passphrase, but
 * {@link #toString()} still leaves the bytes out.
 *
 * @param version {@link FormatConstants#KEY_FORMAT_VERSION}
 * @param kdf {@link FormatConstants#KDF_PBKDF2_SHA256}
 * @param iterations PBKDF2 iterations
 * @param salt base64 of {@link FormatConstants#KDF_SALT_BYTES} random bytes
 * @param nonce base64 of the 12-byte AES-GCM nonce
 * @param wrapped base64 of the ciphertext of data key ‖ id key (64 bytes), then the 16-byte tag
 */
public record WrappedKeys(int version, String kdf, int iterations, String salt, String nonce, String wrapped) {

    private static final Base64.Encoder B64 = Base64.getEncoder();
    private static final Base64.Decoder B64D = Base64.getDecoder();

    /** Wraps {@code keys} under {@code passphrase} with a fresh salt and nonce. */
    public static WrappedKeys wrap(MasterKeys keys, Passphrase passphrase, int iterations, SecureRandom random) {
        checkIterations(iterations);
        byte[] salt = new byte[FormatConstants.KDF_SALT_BYTES];
        byte[] nonce = new byte[FormatConstants.GCM_NONCE_BYTES];
        random.nextBytes(salt);
        random.nextBytes(nonce);
        byte[] plain = keys.toBytes();
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(
                    Cipher.ENCRYPT_MODE,
                    derive(passphrase, salt, iterations),
                    new GCMParameterSpec(FormatConstants.GCM_TAG_BYTES * 8, nonce));
            c.updateAAD(FormatConstants.KEY_WRAP_AAD.getBytes(StandardCharsets.US_ASCII));
            byte[] wrapped = c.doFinal(plain);
            return new WrappedKeys(
                    FormatConstants.KEY_FORMAT_VERSION,
                    FormatConstants.KDF_PBKDF2_SHA256,
                    iterations,
                    B64.encodeToString(salt),
                    B64.encodeToString(nonce),
                    B64.encodeToString(wrapped));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is not available in this JVM", e);
        } finally {
            Arrays.fill(plain, (byte) 0);
        }
    }

    /**
     * The master keys, if {@code passphrase} is the one they were wrapped with; empty otherwise
     * (a wrong passphrase and a tampered key object look the same).
     *
     * @param random the source of nonces for the objects the keys will encrypt
     */
    public Optional<MasterKeys> unwrap(Passphrase passphrase, SecureRandom random) {
        byte[] plain = null;
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(
                    Cipher.DECRYPT_MODE,
                    derive(passphrase, B64D.decode(salt), iterations),
                    new GCMParameterSpec(FormatConstants.GCM_TAG_BYTES * 8, B64D.decode(nonce)));
            c.updateAAD(FormatConstants.KEY_WRAP_AAD.getBytes(StandardCharsets.US_ASCII));
            plain = c.doFinal(B64D.decode(wrapped));
            if (plain.length != 2 * FormatConstants.MASTER_KEY_BYTES) {
                return Optional.empty();
            }
            return Optional.of(MasterKeys.fromBytes(plain, random));
        } catch (AEADBadTagException e) {
            return Optional.empty();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM or PBKDF2 is not available in this JVM", e);
        } finally {
            if (plain != null) {
                Arrays.fill(plain, (byte) 0);
            }
        }
    }

    private static SecretKeySpec derive(Passphrase passphrase, byte[] salt, int iterations)
            throws GeneralSecurityException {
        char[] chars = passphrase.chars();
        PBEKeySpec spec = new PBEKeySpec(chars, salt, iterations, FormatConstants.MASTER_KEY_BYTES * 8);
        try {
            byte[] key = SecretKeyFactory.getInstance(FormatConstants.KDF_PBKDF2_SHA256)
                    .generateSecret(spec)
                    .getEncoded();
            SecretKeySpec out = new SecretKeySpec(key, "AES");
            Arrays.fill(key, (byte) 0);
            return out;
        } finally {
            spec.clearPassword();
            Arrays.fill(chars, '\0');
        }
    }

    private static void checkIterations(int iterations) {
        if (iterations < FormatConstants.MIN_KDF_ITERATIONS) {
            throw new IllegalArgumentException("key derivation needs at least " + FormatConstants.MIN_KDF_ITERATIONS
                    + " iterations, got " + iterations);
        }
    }

    public byte[] toBytes() {
        try {
            return Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a key object", e);
        }
    }

    /**
     * Parses a key object.
     *
     * @throws CorruptObjectException naming {@code key} if it is unreadable or of an unknown kind
     */
    public static WrappedKeys parse(String key, byte[] bytes) {
        WrappedKeys k;
        try {
            k = Json.mapper().readValue(bytes, WrappedKeys.class);
        } catch (IOException e) {
            // Jackson's message may quote the input; the input is not secret, but keep errors short
            throw new CorruptObjectException(key, "unreadable key object");
        }
        if (k.version() > FormatConstants.KEY_FORMAT_VERSION) {
            throw new CorruptObjectException(
                    key, "key object version " + k.version() + " is newer than this Tidemark understands; upgrade");
        }
        if (!FormatConstants.KDF_PBKDF2_SHA256.equals(k.kdf())) {
            throw new CorruptObjectException(key, "unknown key derivation function '" + k.kdf() + "'");
        }
        if (k.iterations() < FormatConstants.MIN_KDF_ITERATIONS) {
            throw new CorruptObjectException(key, "too few key derivation iterations: " + k.iterations());
        }
        try {
            if (B64D.decode(k.salt()).length != FormatConstants.KDF_SALT_BYTES
                    || B64D.decode(k.nonce()).length != FormatConstants.GCM_NONCE_BYTES
                    || B64D.decode(k.wrapped()).length
                            != 2 * FormatConstants.MASTER_KEY_BYTES + FormatConstants.GCM_TAG_BYTES) {
                throw new CorruptObjectException(key, "salt, nonce or wrapped keys have the wrong length");
            }
        } catch (IllegalArgumentException e) {
            throw new CorruptObjectException(key, "salt, nonce or wrapped keys are not base64");
        }
        return k;
    }

    @Override
    public String toString() {
        return "WrappedKeys[version=" + version + ", kdf=" + kdf + ", iterations=" + iterations + "]";
    }
}
